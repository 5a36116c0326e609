// The JS side of crates/bench/tests/js_interop.rs: the real @chipi-stack/backend 14.4.0
// key storage (crypto-es AES) and starknet.js 9 typed-data hashing, batched, one Node
// process per mode.
//
//   node interop.mjs decrypt   stdin {cases: [{encrypted, pin}]}
//     -> {versions, results: [{sdk, crypto_es}]}: what the SDK's decryptPrivateKey and
//        crypto-es's AES.decrypt(..).toString(enc.Utf8) give back (or {error}).
//   node interop.mjs encrypt   stdin {cases: [{pin, key?: hex, generate?: "wallet"|"session"}]}
//     -> {versions, results: [{key, pin, encrypted, public_key}]}: keys as given or made the
//        way @chipi-stack/backend makes wallet and session keys, encrypted with its
//        encryptPrivateKey.
//   node interop.mjs sessions  stdin {create: [{pin, duration}], load: [{json, pin}]}
//     -> {versions, results: {created: [json], loaded: [{public_key_matches, valid_until_type}]}}:
//        sessions.createSessionKey of the real SDK as the JSON a client stores, and our
//        stored sessions parsed and decrypted the way a JS client would.
//   node interop.mjs hash      stdin {typed: [{typed_data, account}], build: [{...}]}
//     -> {versions, typed: [hash], build: [{typed_data, hash}]}: typedData.getMessageHash of
//        given typed data, and of outsideExecution.getTypedData(...) built from JS calls.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ec, num, outsideExecution, typedData } from "starknet";
import { ChipiSessions, decryptPrivateKey, encryptPrivateKey } from "@chipi-stack/backend";

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = (name, from) => {
  // Node's lookup: the nearest node_modules/<name> from `from` upwards.
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", name);
    if (existsSync(join(candidate, "package.json"))) return candidate;
    if (dirname(dir) === dir) throw new Error(`${name} not found from ${from}`);
  }
};
const packageJson = (dir) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));

const backendDir = packageDir("@chipi-stack/backend", here);
// The crypto-es that @chipi-stack/backend itself loads.
const cryptoEsDir = packageDir("crypto-es", backendDir);
const cryptoEsPackage = packageJson(cryptoEsDir);
const { default: CryptoES } = await import(
  pathToFileURL(join(cryptoEsDir, cryptoEsPackage.main)).href
);

const versions = {
  backend: packageJson(backendDir).version,
  backend_crypto_es_range: packageJson(backendDir).dependencies["crypto-es"],
  crypto_es: cryptoEsPackage.version,
  starknet: packageJson(packageDir("starknet", here)).version,
  node: process.version,
};

const attempt = (f) => {
  try {
    return { value: f() };
  } catch (error) {
    return { error: String(error?.message ?? error) };
  }
};

// The key makers of @chipi-stack/backend 14.4.0 (dist/index.mjs): wallets
// (ChipiWallets.getPrivateKeyAX) and sessions (ChipiSessions.createSessionKey).
const walletKey = () => {
  const hex = CryptoES.lib.WordArray.random(32).toString(CryptoES.enc.Hex);
  const max = BigInt("0x800000000000000000000000000000000000000000000000000000000000000");
  return `0x${(BigInt(`0x${hex}`) % max).toString(16)}`;
};
const sessionKey = () =>
  "0x" +
  Array.from(ec.starkCurve.utils.randomPrivateKey())
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");

const modes = {
  decrypt: (input) =>
    input.cases.map(({ encrypted, pin }) => ({
      sdk: attempt(() => decryptPrivateKey(encrypted, pin)),
      crypto_es: attempt(() => CryptoES.AES.decrypt(encrypted, pin).toString(CryptoES.enc.Utf8)),
    })),
  encrypt: (input) =>
    input.cases.map(({ key, generate, pin }) => {
      const privateKey = key ?? (generate === "wallet" ? walletKey() : sessionKey());
      return {
        key: privateKey,
        pin,
        encrypted: encryptPrivateKey(privateKey, pin),
        public_key: ec.starkCurve.getStarkKey(privateKey),
      };
    }),
  sessions: (input) => {
    const sessions = new ChipiSessions(null);
    return {
      created: input.create.map(({ pin, duration }) =>
        JSON.stringify(sessions.createSessionKey({ encryptKey: pin, durationSeconds: duration })),
      ),
      loaded: input.load.map(({ json, pin }) => {
        const session = JSON.parse(json);
        const key = attempt(() => decryptPrivateKey(session.encryptedPrivateKey, pin));
        return {
          public_key_matches:
            key.value !== undefined &&
            num.toHex(ec.starkCurve.getStarkKey(key.value)) === num.toHex(session.publicKey),
          valid_until_type: typeof session.validUntil,
        };
      }),
    };
  },
  hash: (input) => ({
    typed: input.typed.map(({ typed_data, account }) =>
      num.toHex(typedData.getMessageHash(typed_data, account)),
    ),
    build: input.build.map((b) => {
      const data = outsideExecution.getTypedData(
        b.chain_id,
        {
          caller: b.caller,
          execute_after: num.toHex(b.execute_after),
          execute_before: num.toHex(b.execute_before),
        },
        b.nonce,
        b.calls,
        "2",
      );
      return { typed_data: data, hash: num.toHex(typedData.getMessageHash(data, b.account)) };
    }),
  }),
};

const mode = modes[process.argv[2]];
if (!mode) throw new Error(`usage: node interop.mjs ${Object.keys(modes).join("|")} < input.json`);
const input = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(`${JSON.stringify({ versions, results: mode(input) })}\n`);
