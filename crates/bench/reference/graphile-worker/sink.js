"use strict";
// Minimal HTTP sink: answers 200 with an empty body to every request, and
// records (path id, receive time in epoch ms with sub-ms precision).
//
// Control endpoints (not counted):
//   GET /__count  -> {"count":N}
//   GET /__dump   -> {"count":N,"ids":[...],"ts":[...]}   (ids are the URL path after "/")
//   GET /__reset  -> clears the records
//
// Usage: node sink.js [port]      (port 0 / omitted = ephemeral)
// When started via child_process.fork, it sends {port} to the parent over IPC.
const http = require("http");
const { performance } = require("perf_hooks");

const origin = performance.timeOrigin;
let ids = [];
let ts = [];

const server = http.createServer((req, res) => {
  const url = req.url;
  if (url.charCodeAt(1) === 95 /* '_' */ && url.startsWith("/__")) {
    let body;
    if (url === "/__count") body = JSON.stringify({ count: ids.length });
    else if (url === "/__dump") body = JSON.stringify({ count: ids.length, ids, ts });
    else if (url === "/__reset") {
      ids = [];
      ts = [];
      body = "{}";
    } else body = "{}";
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  ts.push(origin + performance.now());
  ids.push(url.slice(1));
  res.writeHead(200, { "content-length": "0" });
  res.end();
  // drain any request body (GET has none, but be safe)
  req.resume();
});
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;

const port = Number(process.argv[2] || process.env.SINK_PORT || 0);
server.listen(port, "127.0.0.1", () => {
  const p = server.address().port;
  if (process.send) process.send({ port: p });
  else console.error(`sink listening on 127.0.0.1:${p}`);
});

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.on("disconnect", shutdown);
