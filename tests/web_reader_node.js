// Runs web/reader.js in Node for tests/test_web_reader.py: node web_reader_node.js MODEL JOBS.json OUT.json [js]
// ("js": the network in plain JavaScript, without the WebAssembly kernel).
// Each job: {"rgba": file of raw RGBA bytes, "width", "height", "number"} -> read()'s result (null if blank),
// or {"input28": file of 784 little-endian float32, "number"} -> predict28()'s result,
// or {"input28": ..., "number", "explain": true} -> explain28()'s result, typed arrays as plain arrays; with
// "after": a number, predict28(input28, after) runs first (explain28 then reuses the activations it left).
const fs = require("fs");
const path = require("path");
const MnistSumReader = require(path.join(__dirname, "..", "web", "reader.js"));

/** A result with its typed arrays (also inside maps) as plain arrays, for JSON. */
function plain(value) {
  if (ArrayBuffer.isView(value)) return Array.from(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

const [model, jobsFile, outFile, backend] = process.argv.slice(2);
const reader = MnistSumReader.fromBuffer(fs.readFileSync(model), { wasm: backend !== "js" });
const results = JSON.parse(fs.readFileSync(jobsFile, "utf8")).map((job) => {
  if (job.input28) {
    const bytes = fs.readFileSync(job.input28);
    const input28 = new Float32Array(bytes.buffer, bytes.byteOffset, 784);
    if (!job.explain) return reader.predict28(input28, job.number);
    if (job.after !== undefined) reader.predict28(input28, job.after);
    return plain(reader.explain28(input28, job.number));
  }
  const rgba = new Uint8Array(fs.readFileSync(job.rgba));
  const input = reader.toInput28(rgba, job.width, job.height);
  const r = reader.read(rgba, job.width, job.height, job.number);
  if (r === null) return null;
  return { ...r, input28: Array.from(r.input28), input28Float: Array.from(input) };
});
fs.writeFileSync(outFile, JSON.stringify({ threshold: reader.threshold, backend: reader.backend, results }));
