/* The page's reader in a Web Worker (started by web/page.js): preprocessing and network off the main thread,
 * so drawing stays smooth while the pad is read.
 *
 * Messages in:  {type: "init", readerUrl, modelUrl}
 *               {type: "read", id, rgba (Uint8ClampedArray, transferred), width, height, number, explain}
 *               {type: "predict", id, number, explain}   the last drawing read again, with another number
 *               {type: "explain", id, number}            the last drawing explained with another number
 * Messages out: {type: "ready", threshold, modelBytes, loadMs} | {type: "failed", message}
 *               {type: "result", id, result (null: blank), ms (time in the reader)} | {type: "error", id, message}
 *               {type: "explanation", id, explanation (null: blank), ms, error (only when it failed)}
 *
 * explain: true on "read" or "predict" asks for the explanation too (reader.explain28: feature maps, what-if,
 * adder, sum table; with input28, the 28x28 input as bytes; its typed arrays transferred). It comes as a second
 * message, after the result, so the label never waits for it; it costs about a millisecond there, the activations being still in the reader's buffers.
 * An explanation that fails says so in its own message, not with "error" (which makes the page stop reading).
 */
"use strict";

let reader = null;
let last = null; // the last drawing's 28x28 input (Float32Array, null: blank), read again when the number changes

/** A result the page can use: plain arrays, the 28x28 input as bytes. */
function plain(prediction, number) {
  if (!prediction) return null;
  return {
    digit: prediction.digit, sum: prediction.sum, number,
    digitProbs: Array.from(prediction.digitProbs), sumProbs: Array.from(prediction.sumProbs),
    isDigit: prediction.isDigit, digitScore: prediction.digitScore,
    input28: prediction.input28, // Uint8Array(784), transferred
  };
}

async function init(message) {
  const started = performance.now();
  importScripts(message.readerUrl);
  const response = await fetch(message.modelUrl);
  if (!response.ok) throw new Error(`model: HTTP ${response.status}`);
  const bytes = await response.arrayBuffer();
  reader = await self.MnistSumReader.fromBuffer(bytes);
  return {type: "ready", threshold: reader.threshold, modelBytes: bytes.byteLength,
          loadMs: performance.now() - started};
}

function run(message) {
  const started = performance.now();
  if (message.type === "read") last = reader.toInput28(message.rgba, message.width, message.height);
  // a new number needs only the network: the drawing's preprocessing is kept
  const prediction = last && {...reader.predict28(last, message.number), input28: reader.inputBytes(last)};
  return {type: "result", id: message.id, result: plain(prediction, message.number), ms: performance.now() - started};
}

/** The "explanation" message for the last drawing and a number, with the typed arrays to transfer. */
function explain(id, number) {
  const started = performance.now();
  try {
    if (!reader) throw new Error("the reader is not loaded");
    // the drawing's 28x28 view comes along (as in a result), so an explanation is whole on its own
    const explanation = last && {...reader.explain28(last, number), input28: reader.inputBytes(last)};
    const transfer = explanation ? [explanation.digitProbs, explanation.whatIfProbs, explanation.sumProbs,
      explanation.adderProbs, explanation.sumTable, explanation.sumTableProbs, explanation.input28,
      ...explanation.maps.map((m) => m.data)].map((a) => a.buffer) : [];
    return [{type: "explanation", id, explanation, ms: performance.now() - started}, transfer];
  } catch (error) {
    return [{type: "explanation", id, explanation: null, ms: performance.now() - started,
             error: String(error && error.message || error)}, []];
  }
}

self.onmessage = async (event) => {
  const message = event.data;
  if (message.type === "init") {
    try {
      self.postMessage(await init(message));
    } catch (error) {
      self.postMessage({type: "failed", message: String(error && error.message || error)});
    }
    return;
  }
  if (message.type === "explain") {
    self.postMessage(...explain(message.id, message.number));
    return;
  }
  try {
    if (!reader) throw new Error("the reader is not loaded");
    const reply = run(message);
    self.postMessage(reply, reply.result ? [reply.result.input28.buffer] : []);
  } catch (error) {
    self.postMessage({type: "error", id: message.id, message: String(error && error.message || error)});
    return;
  }
  if (message.explain) self.postMessage(...explain(message.id, message.number));  // after the result: never delays it
};
