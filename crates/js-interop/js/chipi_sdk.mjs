// What the scripts that drive Chipi's server SDK against our paymaster share: the SDK
// loaded the way it must be (STARKNET_RPC_URL set before its import), stdout kept for
// the JSON result, a time bound, and step runners that record each result or refusal.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const errorOf = (error) => ({
  name: error?.name ?? null,
  code: error?.code ?? null,
  status: error?.status ?? null,
  message: String(error?.message ?? error),
});

// Reads the input from stdin, loads the SDK for it and returns the helpers.
export async function setup(scriptName) {
  const input = JSON.parse(readFileSync(0, "utf8"));
  // Before any import of the SDK or its shared constants.
  process.env.STARKNET_RPC_URL = input.rpc_url;
  // stdout is for the JSON result only (the SDK's session methods log with console.log).
  console.log = (...args) => console.error(...args);
  console.info = (...args) => console.error(...args);
  console.debug = (...args) => console.error(...args);
  // Never hang the Rust test: give up after a bounded time.
  setTimeout(() => {
    console.error(`${scriptName}: timed out`);
    process.exit(3);
  }, 300_000).unref();

  const here = dirname(fileURLToPath(import.meta.url));
  const packageDir = (name) => {
    for (let dir = here; ; dir = dirname(dir)) {
      const candidate = join(dir, "node_modules", name);
      if (existsSync(join(candidate, "package.json"))) return candidate;
      if (dirname(dir) === dir) throw new Error(`${name} not found from ${here}`);
    }
  };
  const packageJson = (dir) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const backendDir = packageDir("@chipi-stack/backend");
  const starknetDir = packageDir("starknet");
  const { ChipiServerSDK } = await import(pathToFileURL(join(backendDir, "dist/index.mjs")).href);
  const { hash } = await import("starknet");
  const versions = {
    backend: packageJson(backendDir).version,
    starknet: packageJson(starknetDir).version,
    node: process.version,
  };

  const results = {};
  const state = { step: "import" };
  // A step that must succeed.
  const run = async (name, f) => {
    state.step = name;
    const value = await f();
    results[name] = value === undefined ? null : value;
    return value;
  };
  // A step that must fail: its error as the SDK surfaces it.
  const refusal = async (name, f) => {
    state.step = name;
    try {
      const value = await f();
      results[name] = { unexpected_success: value === undefined ? null : value };
    } catch (error) {
      results[name] = { error: errorOf(error) };
    }
  };
  const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
  const finish = (error) =>
    print(
      error === undefined
        ? { ok: true, versions, results }
        : { ok: false, versions, failed_step: state.step, error: errorOf(error), results },
    );

  const sdk = new ChipiServerSDK({
    apiPublicKey: input.api_key,
    apiSecretKey: input.secret_key,
    alphaUrl: input.service_url,
  });
  // GET /v1/transactions/{hash}/status through the SDK (app secret key) until final.
  const waitFinal = async (txHash) => {
    for (let i = 0; i < 600; i++) {
      const status = await sdk.getTransactionStatus(txHash);
      if (status.status !== "PENDING") return status;
      await sleep(100);
    }
    throw new Error(`transaction ${txHash} still PENDING`);
  };
  const createParams = (externalUserId, extra = {}) => ({
    encryptKey: input.pin,
    externalUserId,
    walletType: "CHIPI",
    chain: "STARKNET",
    classHash: input.class_hash,
    ...extra,
  });
  const strkCall = (entrypoint, to, amount) => ({
    contractAddress: input.strk,
    entrypoint,
    calldata: [to, amount, "0x0"],
  });
  return { input, sdk, hash, run, refusal, finish, waitFinal, createParams, strkCall };
}
