// The JS side of crates/js-interop/tests/chipi_policy.rs: Chipi's server SDK
// (@chipi-stack/backend 14.4.0) against our paymaster under a tight sponsorship policy
// (approve denied, two sponsored transactions per user): what its caller sees of each
// refusal (API.md section 10).
//
//   node chipi_policy.mjs   stdin {rpc_url, service_url, api_key, secret_key, user,
//                                  user_token, class_hash, strk, pin}
//     -> {ok, versions, results: {<step>: value or {error: {name, code, status, message}}}}
import { setup } from "./chipi_sdk.mjs";

const { input, sdk, run, refusal, finish, waitFinal, createParams, strkCall } =
  await setup("chipi_policy.mjs");
const bearerToken = input.user_token;

try {
  // The deployment is the user's first sponsored transaction.
  const wallet = await run("create_wallet", () =>
    sdk.createWallet({ params: createParams(input.user), bearerToken }),
  );
  await run("deploy_status", () => waitFinal(wallet.txHash));
  const execute = (entrypoint) =>
    sdk.executeTransaction({
      params: { encryptKey: input.pin, wallet, calls: [strkCall(entrypoint, "0x1", "0")] },
      bearerToken,
    });
  await refusal("denied_call", () => execute("approve"));
  const tx = await run("allowed_call", () => execute("transfer"));
  await run("allowed_status", () => waitFinal(tx));
  await refusal("over_the_count", () => execute("transfer"));
  finish();
} catch (error) {
  finish(error);
}
