// The JS side of crates/js-interop/tests/snip29_deploy.rs: starknet.js 9's
// `Account.executePaymasterTransaction` with `deploymentData`, for an account that does
// not exist yet (a new session account): it sends SNIP-29 `deploy_and_invoke`, signs the
// typed data with the new owner key, and our paymaster deploys the account and runs its
// first calls in one sponsored transaction.
//
//   node snip29_deploy.mjs   stdin {rpc_url, paymaster_url, api_key, address, private_key,
//                                   class_hash, salt, calldata, strk, recipient, amount}
//     -> {ok, fee, transaction_hash} or {ok: false, failed_step, error}
import { Account, PaymasterRpc, RpcProvider, CallData, cairo } from "starknet";
import { readFileSync } from "node:fs";

const input = JSON.parse(readFileSync(0, "utf8"));
const out = { ok: true };
let step = "setup";
const show = (value) =>
  JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));

try {
  const provider = new RpcProvider({ nodeUrl: input.rpc_url });
  const paymaster = new PaymasterRpc({
    nodeUrl: input.paymaster_url,
    headers: { "x-paymaster-api-key": input.api_key },
  });
  const account = new Account({
    provider,
    address: input.address,
    signer: input.private_key,
    paymaster,
  });
  const details = {
    feeMode: { mode: "sponsored" },
    deploymentData: {
      address: input.address,
      class_hash: input.class_hash,
      salt: input.salt,
      calldata: input.calldata,
      version: 1,
    },
  };
  const transfer = {
    contractAddress: input.strk,
    entrypoint: "transfer",
    calldata: CallData.compile({ recipient: input.recipient, amount: cairo.uint256(input.amount) }),
  };
  step = "estimatePaymasterTransactionFee";
  out.fee = show(await account.estimatePaymasterTransactionFee([transfer], details));
  step = "executePaymasterTransaction";
  const result = await account.executePaymasterTransaction([transfer], details);
  out.transaction_hash = result.transaction_hash;
} catch (error) {
  out.ok = false;
  out.failed_step = step;
  out.error = String(error?.stack ?? error);
}
process.stdout.write(JSON.stringify(out));
