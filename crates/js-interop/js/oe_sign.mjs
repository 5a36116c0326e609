// The starknet.js 9 side of `bench-table` (crates/bench/src/bin/bench-table.rs).
//
// Reads the inputs as JSON from stdin (or from the file named by argv[2]), then times what
// a JS client does to sign a session outside execution from the same strings:
// `outsideExecution.getTypedData` (SNIP-9 v2) -> `typedData.getMessageHash` ->
// `ec.starkCurve.sign`, and assembles the session signature
// [session_public_key, r, s, valid_until] as @chipi-stack/backend does. It also times one
// `decryptPrivateKey` of @chipi-stack/backend (crypto-es AES, the compatible format).
//
// Prints one JSON object: {one_call_ns, ten_calls_ns, hash_one, hash_ten, sig_one,
// sig_ten, decrypt_compatible_ns, starknet_version, node_version}.
import { readFileSync } from "node:fs";
import { ec, num, outsideExecution, typedData } from "starknet";
import { decryptPrivateKey } from "@chipi-stack/backend";

const input = JSON.parse(
  process.argv[2] ? readFileSync(process.argv[2], "utf8") : readFileSync(0, "utf8"),
);
const timeMs = Number(input.time_ms ?? 6000);

function signOutsideExecution(calls) {
  const data = outsideExecution.getTypedData(
    input.chain_id,
    {
      caller: input.caller,
      execute_after: num.toHex(input.execute_after),
      execute_before: num.toHex(input.execute_before),
    },
    input.nonce,
    calls,
    "2",
  );
  const hash = typedData.getMessageHash(data, input.account);
  const { r, s } = ec.starkCurve.sign(hash, input.private_key);
  return {
    hash,
    signature: [input.public_key, num.toHex(r), num.toHex(s), num.toHex(input.valid_until)],
  };
}

const now = () => process.hrtime.bigint();
let sink;

// Calls of `f` per batch of about 20 ms, after 200 ms of warm-up.
function calibrate(f) {
  const start = now();
  let runs = 0;
  while (runs === 0 || now() - start < 200_000_000n) {
    sink = f();
    runs++;
  }
  return Math.max(1, Math.round(20e6 / (Number(now() - start) / runs)));
}

// The same procedure as the Rust `Sampler`: the functions in turn, one batch each per
// round, for `timeMs` (and at least 3 rounds); nanoseconds per call of each function are
// the median of its batches.
function sampleInTurn(functions, timeMs) {
  const batches = functions.map(calibrate);
  const samples = functions.map(() => []);
  const end = now() + BigInt(timeMs) * 1_000_000n;
  for (let round = 0; round < 3 || now() < end; round++) {
    functions.forEach((f, i) => {
      const start = now();
      for (let j = 0; j < batches[i]; j++) sink = f();
      samples[i].push(Number(now() - start) / batches[i]);
    });
  }
  if (sink === undefined) throw new Error("nothing computed");
  return samples.map((s) => s.sort((a, b) => a - b)[Math.floor(s.length / 2)]);
}

const one = signOutsideExecution(input.cases.one);
const ten = signOutsideExecution(input.cases.ten);
if (decryptPrivateKey(input.decrypt.encrypted, input.decrypt.pin) !== input.private_key) {
  throw new Error("@chipi-stack/backend decryptPrivateKey did not give back the session key");
}
const [oneCallNs, tenCallsNs, decryptNs] = sampleInTurn(
  [
    () => signOutsideExecution(input.cases.one),
    () => signOutsideExecution(input.cases.ten),
    () => decryptPrivateKey(input.decrypt.encrypted, input.decrypt.pin),
  ],
  timeMs,
);
const result = {
  one_call_ns: oneCallNs,
  ten_calls_ns: tenCallsNs,
  decrypt_compatible_ns: decryptNs,
  hash_one: one.hash,
  hash_ten: ten.hash,
  sig_one: one.signature,
  sig_ten: ten.signature,
  starknet_version: JSON.parse(
    readFileSync(new URL("./node_modules/starknet/package.json", import.meta.url), "utf8"),
  ).version,
  node_version: process.version,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
