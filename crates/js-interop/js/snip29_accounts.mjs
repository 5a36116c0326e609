// The JS side of crates/js-interop/tests/snip29_accounts.rs: starknet.js 9's SNIP-29
// client against our paymaster service for a wallet that is not our session account
// (`Snip9Account`, OpenZeppelin-like, signed by starknet.js's own Signer), on the
// embedded devnet. Rust checks the chain; this script only drives starknet.js and reports
// what it returned or threw.
//
//   node snip29_accounts.mjs flows   stdin {rpc_url, paymaster_url, api_key, address,
//                                           private_key, strk, recipient, amount}
//     -> {ok, version, sponsored_fee, default_fee, sponsored_hash, default_hash,
//         default_build_fee}
//   node snip29_accounts.mjs errors  stdin {..., other_key, unsupported_token, predeployed}
//     -> {ok, bad_signature, unsupported_token, amount_too_low, unpaid, not_sponsored,
//         not_snip9_locally}
//   or {ok: false, failed_step, error}
//
// An error is reported as {code, data, message} from what starknet.js threw (its RpcError
// carries the JSON-RPC error as `baseError`; another error has only a message);
// `code: null` when nothing was thrown.
import { Account, PaymasterRpc, RpcProvider, CallData, cairo } from "starknet";
import { readFileSync } from "node:fs";

const mode = process.argv[2];
const input = JSON.parse(readFileSync(0, "utf8"));
const out = { ok: true };
let step = "setup";
const show = (value) =>
  JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v)));

/** What `promise` threw, as starknet.js surfaces it; `{code: null}` if it did not throw. */
async function refusal(promise) {
  try {
    return { code: null, result: show(await promise) };
  } catch (error) {
    return {
      code: error?.baseError?.code ?? null,
      data: error?.baseError?.data ?? null,
      message: error?.baseError?.message ?? String(error?.message ?? error),
    };
  }
}

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
  const accountOf = (address, key) =>
    new Account({ provider, address, signer: key, paymaster });
  const account = accountOf(input.address, input.private_key);
  const sponsored = { feeMode: { mode: "sponsored" } };
  const paying = { feeMode: { mode: "default", gasToken: input.strk } };
  const transfer = {
    contractAddress: input.strk,
    entrypoint: "transfer",
    calldata: CallData.compile({ recipient: input.recipient, amount: cairo.uint256(input.amount) }),
  };
  const executionParameters = (feeMode) => ({ version: "0x1", feeMode });

  if (mode === "flows") {
    step = "estimate sponsored";
    out.sponsored_fee = show(await account.estimatePaymasterTransactionFee([transfer], sponsored));
    step = "estimate default";
    const quote = await account.estimatePaymasterTransactionFee([transfer], paying);
    out.default_fee = show(quote);

    step = "execute sponsored";
    out.sponsored_hash = (await account.executePaymasterTransaction([transfer], sponsored))
      .transaction_hash;

    // The build that executePaymasterTransaction makes itself: its fee is the amount of
    // the final transfer starknet.js checked and signed.
    step = "execute default";
    // (Account wraps the PaymasterRpc it is given in a copy of its own.)
    const client = account.paymaster;
    const build = client.buildTransaction.bind(client);
    let built;
    client.buildTransaction = async (...args) => (built = await build(...args));
    // Twice the estimate as the user's ceiling: the fee may move between the two builds.
    const ceiling = quote.suggested_max_fee_in_gas_token * 2n;
    out.default_hash = (await account.executePaymasterTransaction([transfer], paying, ceiling))
      .transaction_hash;
    client.buildTransaction = build;
    out.default_build_fee = show(built.fee);
  } else if (mode === "errors") {
    step = "bad signature";
    const impostor = accountOf(input.address, input.other_key);
    out.bad_signature = await refusal(impostor.executePaymasterTransaction([transfer], sponsored));

    step = "unsupported token";
    const unsupported = { feeMode: { mode: "default", gasToken: input.unsupported_token } };
    out.unsupported_token = await refusal(
      account.estimatePaymasterTransactionFee([transfer], unsupported),
    );

    // The typed data's final fee transfer lowered to 1 and signed again by the owner:
    // a valid signature over a payment below the fee.
    step = "amount too low";
    const invoke = (calls) => ({ type: "invoke", invoke: { userAddress: input.address, calls } });
    const prepared = await paymaster.buildTransaction(
      invoke([transfer]),
      executionParameters(paying.feeMode),
    );
    const typedData = structuredClone(prepared.typed_data);
    const calls = typedData.message.Calls;
    calls[calls.length - 1].Calldata[1] = "0x1";
    out.amount_too_low = await refusal(
      paymaster.executeTransaction(
        {
          type: "invoke",
          invoke: {
            userAddress: input.address,
            typedData,
            signature: await account.signMessage(typedData),
          },
        },
        executionParameters(paying.feeMode),
      ),
    );

    // A sponsored build executed in default mode: no fee transfer at all.
    step = "unpaid";
    const free = await paymaster.buildTransaction(
      invoke([transfer]),
      executionParameters(sponsored.feeMode),
    );
    out.unpaid = await refusal(
      paymaster.executeTransaction(
        {
          type: "invoke",
          invoke: {
            userAddress: input.address,
            typedData: free.typed_data,
            signature: await account.signMessage(free.typed_data),
          },
        },
        executionParameters(paying.feeMode),
      ),
    );

    // The devnet's predeployed OpenZeppelin account: starknet.js's Account refuses it
    // before asking (no SRC-5 answer for SNIP-9), so ask through PaymasterRpc directly.
    step = "not sponsored";
    out.not_snip9_locally = await refusal(
      accountOf(input.predeployed, input.other_key).executePaymasterTransaction(
        [transfer],
        sponsored,
      ),
    );
    out.not_sponsored = await refusal(
      paymaster.buildTransaction(
        { type: "invoke", invoke: { userAddress: input.predeployed, calls: [transfer] } },
        executionParameters(sponsored.feeMode),
      ),
    );
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} catch (error) {
  out.ok = false;
  out.failed_step = step;
  out.error = String(error?.stack ?? error);
}
process.stdout.write(JSON.stringify(out));
