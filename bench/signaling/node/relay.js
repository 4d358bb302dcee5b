// The Node reference relay for `make bench-signaling`: a minimal socket.io server.
//
// A client connects (WebSocket transport only) with `?user=<id>`; a "signal" event whose payload
// is {"to": "<id>", ...} is emitted, as is, to that user's socket. No authentication, no
// database: the kind of relay the socket.io figures were measured with.
//
// Run: node bench/signaling/node/relay.js --port 8766   (binds 127.0.0.1 only)
"use strict";

const http = require("http");
const { Server } = require("socket.io");

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const host = option("host", "127.0.0.1");
const port = Number(option("port", "8766"));
const sockets = new Map();
let dropped = 0;

const httpServer = http.createServer();
const io = new Server(httpServer, {
  serveClient: false,
  transports: ["websocket"],
  perMessageDeflate: false,
  maxHttpBufferSize: 1 << 20,
});

io.on("connection", (socket) => {
  const user = String(socket.handshake.query.user || "");
  if (!user) {
    socket.disconnect(true);
    return;
  }
  sockets.set(user, socket);
  socket.on("signal", (message) => {
    const peer = message && sockets.get(String(message.to));
    if (peer === undefined) {
      dropped += 1;
      return;
    }
    peer.emit("signal", message);
  });
  socket.on("disconnect", () => {
    if (sockets.get(user) === socket) sockets.delete(user);
  });
});

httpServer.listen({ host, port, backlog: 4096 }, () => {
  console.log(`socket.io relay listening on ${host}:${port}`);
});

function stop() {
  io.close(() => {
    console.log(`socket.io relay stopped; ${dropped} events dropped`);
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
