// The JS side of crates/js-interop/tests/snip29_starknet_js.rs: starknet.js 9's own
// SNIP-29 client (`PaymasterRpc`, `Account.executePaymasterTransaction`) against our
// paymaster service over real HTTP, on the embedded devnet, as any starknet.js app that
// "switches paymaster" by changing one URL would use it.
//
//   node snip29.mjs   stdin {rpc_url, paymaster_url, api_key, address, private_key, strk,
//                            recipient, amount, session: {private_key, public_key, valid_until}}
//     -> {ok, version, available, tokens, fee, transaction_hash, default_fee, default_hash,
//         session_hash, refused}
//
// `session_hash`: the same sponsored transfer signed by a session key registered on the
// wallet, through a starknet.js `Signer` whose signatures are the wallet's session form
// `[session key, r, s, valid_until]` (starknet.js passes them through unchanged).
//        or {ok: false, failed_step, error}
//
// `refused` is what starknet.js throws for a call the app's policy denies (`approve`):
// the JSON-RPC error it received, as its RpcError carries it.
import { Account, PaymasterRpc, RpcProvider, CallData, Signer, cairo, num } from "starknet";
import { readFileSync } from "node:fs";

const input = JSON.parse(readFileSync(0, "utf8"));
const out = { ok: true };
let step = "setup";
const show = (value) =>
  JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));

try {
  const { version } = JSON.parse(
    readFileSync(new URL("./node_modules/starknet/package.json", import.meta.url), "utf8"),
  );
  out.version = version;
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
  const details = { feeMode: { mode: "sponsored" } };
  const transfer = {
    contractAddress: input.strk,
    entrypoint: "transfer",
    calldata: CallData.compile({ recipient: input.recipient, amount: cairo.uint256(input.amount) }),
  };

  step = "isAvailable";
  out.available = await paymaster.isAvailable();
  step = "getSupportedTokens";
  out.tokens = show(await paymaster.getSupportedTokens());
  step = "estimatePaymasterTransactionFee";
  out.fee = show(await account.estimatePaymasterTransactionFee([transfer], details));
  step = "executePaymasterTransaction";
  const result = await account.executePaymasterTransaction([transfer], details);
  out.transaction_hash = result.transaction_hash;

  // Paying the fee in STRK (default mode): starknet.js checks that the typed data is the
  // calls plus one final transfer of the gas token for exactly the suggested fee, no more
  // than the maximum it is given.
  step = "default";
  const paying = { feeMode: { mode: "default", gasToken: input.strk } };
  const quote = await account.estimatePaymasterTransactionFee([transfer], paying);
  out.default_fee = show(quote);
  const paid = await account.executePaymasterTransaction(
    [transfer],
    paying,
    quote.suggested_max_fee_in_gas_token,
  );
  out.default_hash = paid.transaction_hash;

  step = "session";
  class SessionSigner extends Signer {
    constructor(session) {
      super(session.private_key);
      this.session = session;
    }
    async signRaw(hash) {
      const signature = await super.signRaw(hash);
      return [
        this.session.public_key,
        num.toHex(signature.r),
        num.toHex(signature.s),
        num.toHex(this.session.valid_until),
      ];
    }
  }
  const sessionAccount = new Account({
    provider,
    address: input.address,
    signer: new SessionSigner(input.session),
    paymaster,
  });
  out.session_hash = (await sessionAccount.executePaymasterTransaction([transfer], details))
    .transaction_hash;

  step = "refused";
  const approve = {
    contractAddress: input.strk,
    entrypoint: "approve",
    calldata: CallData.compile({ spender: input.recipient, amount: cairo.uint256(1) }),
  };
  try {
    await account.executePaymasterTransaction([approve], details);
    out.refused = null;
  } catch (error) {
    out.refused = {
      name: error?.name,
      code: error?.baseError?.code ?? error?.code,
      data: error?.baseError?.data ?? error?.data,
      message: String(error?.message ?? error),
    };
  }
} catch (error) {
  out.ok = false;
  out.failed_step = step;
  out.error = String(error?.stack ?? error);
}
process.stdout.write(JSON.stringify(out));
