// Times web/reader.js in Node for benchmarks/web_reader.py: node web_reader_node.js MODEL JOBS.json ROUNDS
// Each job: {"rgba": file of raw RGBA bytes, "width", "height", "number"}. Prints JSON: per backend
// ("wasm-simd", "js") the milliseconds of each read() and of each predict28() (the network alone), of each
// explain28() right after predict28() on the same input ("explain": what the worker adds to a reading, the
// activations reused) and of each explain28() on an input the reader has not just run ("explainCold").
const fs = require("fs");
const path = require("path");
const MnistSumReader = require(path.join(__dirname, "..", "web", "reader.js"));

const [model, jobsFile, rounds] = process.argv.slice(2);
const bytes = fs.readFileSync(model);
const jobs = JSON.parse(fs.readFileSync(jobsFile, "utf8"))
  .map((j) => ({ ...j, pixels: new Uint8Array(fs.readFileSync(j.rgba)) }));
const out = {};
for (const wasm of [true, false]) {
  const reader = MnistSumReader.fromBuffer(bytes, { wasm });
  const inputs = jobs.map((j) => reader.toInput28(j.pixels, j.width, j.height));
  for (let i = 0; i < 3; i++) jobs.forEach((j) => reader.read(j.pixels, j.width, j.height, j.number));  // warm-up
  const read = [], forward = [], explain = [], explainCold = [];
  for (let r = 0; r < Number(rounds); r++) {
    jobs.forEach((j, i) => {
      let t = performance.now();
      reader.read(j.pixels, j.width, j.height, j.number);
      read.push(performance.now() - t);
      t = performance.now();
      reader.predict28(inputs[i], j.number);
      forward.push(performance.now() - t);
      t = performance.now();
      reader.explain28(inputs[i], j.number);
      explain.push(performance.now() - t);
      reader.predict28(inputs[(i + 1) % inputs.length].map((v) => 1 - v), j.number);  // another input: a cold start
      t = performance.now();
      reader.explain28(inputs[i], j.number);
      explainCold.push(performance.now() - t);
    });
  }
  out[reader.backend] = { read, forward, explain, explainCold };
}
console.log(JSON.stringify(out));
