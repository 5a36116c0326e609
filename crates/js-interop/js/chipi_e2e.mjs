// The JS side of crates/js-interop/tests/chipi_paymaster.rs: Chipi's real server SDK
// (@chipi-stack/backend 14.4.0, `ChipiServerSDK`) driven against our paymaster service
// over real HTTP, on the embedded devnet. One process, every step in order:
//
//   node chipi_e2e.mjs   stdin {rpc_url, service_url, api_key, secret_key, user, user_token,
//                               user2, user3, other_user, unknown_user, class_hash, strk, pin,
//                               fund, session_duration, recipients: {owner, session, refused},
//                               amounts: {owner, session, refused}}
//     -> {ok, versions, results: {<step>: value or {error: {name, code, status, message}}}}
//        and, when a step that must succeed threw, {ok: false, failed_step, error}.
//
// The wallet of `user` is funded by the Rust side once its record exists; this script
// waits for the STRK to arrive (read through the node) before the owner transaction.
//
// What the SDK needs here (API.md section 9): STARKNET_RPC_URL set before the module is
// imported (it is read once, at import); `alphaUrl` is the API base (it appends /v1);
// `createWallet` takes our class hash as `classHash`; the sessions methods send no
// Authorization header without an explicit bearer; its session methods log with
// console.log, so console.log goes to stderr and stdout carries only the result.
import { setup, sleep } from "./chipi_sdk.mjs";

const { input, sdk, hash, run, refusal, finish, waitFinal, createParams, strkCall } =
  await setup("chipi_e2e.mjs");
const userToken = input.user_token;
const pin = input.pin;
const strkTransfer = (to, amount) => strkCall("transfer", to, amount);

// The STRK balance of `address`, read through the node (plain JSON-RPC).
const strkBalance = async (address) => {
  const response = await fetch(input.rpc_url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "starknet_call",
      params: {
        request: {
          contract_address: input.strk,
          entry_point_selector: hash.getSelectorFromName("balance_of"),
          calldata: [address],
        },
        block_id: "latest",
      },
    }),
  });
  const body = await response.json();
  if (body.error) throw new Error(`balance_of: ${JSON.stringify(body.error)}`);
  return BigInt(body.result[0]) + (BigInt(body.result[1] ?? 0) << 128n);
};

try {
  // 1. Wallets: with a user token, and with the app secret key (no bearer).
  const wallet = await run("create_wallet_user_token", () =>
    sdk.createWallet({ params: createParams(input.user), bearerToken: userToken }),
  );
  await run("deploy_status_user", () => waitFinal(wallet.txHash));
  const wallet2 = await run("create_wallet_secret_key", () =>
    sdk.createWallet({ params: createParams(input.user2) }),
  );
  await run("deploy_status_user2", () => waitFinal(wallet2.txHash));

  // Creation refusals, none of which deploys anything.
  // Without `classHash` the SDK derives the address from Chipi's hosted class.
  await refusal("create_wallet_without_class_hash", () =>
    sdk.createWallet({ params: createParams(input.user3, { classHash: undefined }) }),
  );
  // A user token for another externalUserId.
  await refusal("create_wallet_other_user", () =>
    sdk.createWallet({ params: createParams(input.other_user), bearerToken: userToken }),
  );
  // The same user again (the SDK makes a new key): 409 WALLET_ALREADY_EXISTS.
  await refusal("create_wallet_again", () =>
    sdk.createWallet({ params: createParams(input.user), bearerToken: userToken }),
  );

  // The Rust side funds the wallet once its record exists.
  await run("funded", async () => {
    const fund = BigInt(input.fund);
    for (let i = 0; i < 1200; i++) {
      const balance = await strkBalance(wallet.publicKey);
      if (balance >= fund) return balance.toString();
      await sleep(100);
    }
    throw new Error("the wallet was not funded");
  });

  // 2. Owner transaction (user token).
  const ownerTx = await run("owner_execute", () =>
    sdk.executeTransaction({
      params: {
        encryptKey: pin,
        wallet,
        calls: [strkTransfer(input.recipients.owner, input.amounts.owner)],
      },
      bearerToken: userToken,
    }),
  );
  await run("owner_execute_status", () => waitFinal(ownerTx));

  // 3. Session: made locally, registered, used, revoked, refused.
  const session = await run("session", () =>
    sdk.sessions.createSessionKey({ encryptKey: pin, durationSeconds: input.session_duration }),
  );
  const sessionConfig = {
    sessionPublicKey: session.publicKey,
    validUntil: session.validUntil,
    maxCalls: 5,
    allowedEntrypoints: [hash.getSelectorFromName("transfer")],
  };
  // Without an explicit bearer the sessions methods send no Authorization header.
  await refusal("add_session_without_bearer", () =>
    sdk.sessions.addSessionKeyToContract({ encryptKey: pin, wallet, sessionConfig }),
  );
  const addTx = await run("add_session", () =>
    sdk.sessions.addSessionKeyToContract({ encryptKey: pin, wallet, sessionConfig }, userToken),
  );
  await run("add_session_status", () => waitFinal(addTx));

  // Top-level method, no bearer: the app secret key.
  const sessionTx = await run("session_execute", () =>
    sdk.executeTransactionWithSession({
      params: {
        encryptKey: pin,
        wallet,
        session,
        calls: [strkTransfer(input.recipients.session, input.amounts.session)],
      },
    }),
  );
  await run("session_execute_status", () => waitFinal(sessionTx));

  const revokeTx = await run("revoke_session", () =>
    sdk.sessions.revokeSessionKey(
      { encryptKey: pin, wallet, sessionPublicKey: session.publicKey },
      userToken,
    ),
  );
  await run("revoke_session_status", () => waitFinal(revokeTx));

  await refusal("session_execute_after_revoke", () =>
    sdk.executeTransactionWithSession({
      params: {
        encryptKey: pin,
        wallet,
        session,
        calls: [strkTransfer(input.recipients.refused, input.amounts.refused)],
      },
      bearerToken: userToken,
    }),
  );

  // 4. Records.
  await run("get_wallet_user", () =>
    sdk.getWallet({ externalUserId: input.user }, userToken),
  );
  await run("get_wallet_user2", () => sdk.getWallet({ externalUserId: input.user2 }));
  await run("get_wallet_unknown", () => sdk.getWallet({ externalUserId: input.unknown_user }));

  finish();
} catch (error) {
  finish(error);
}
