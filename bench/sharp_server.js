// The sharp peer of the benchmark: what a Node user would write, sharp's
// defaults throughout (its libvips thread pool, libuv's 4 worker threads,
// sharp's JPEG encoder settings). GET /fit/WxH/FILE answers FILE (from the
// directory given on the command line) fitted inside WxH, never enlarged,
// as a JPEG of quality 80.
//
//   node bench/sharp_server.js PORT PHOTO_DIR
const http = require("http");
const path = require("path");
const sharp = require("sharp");

const [port, root] = [Number(process.argv[2]), process.argv[3]];

http
  .createServer(async (req, res) => {
    if (req.url === "/health") {
      res.writeHead(200);
      return res.end("ok");
    }
    const m = req.url.match(/^\/fit\/(\d+)x(\d+)\/([\w.-]+)$/);
    if (!m) {
      res.writeHead(404);
      return res.end();
    }
    try {
      const body = await sharp(path.join(root, m[3]))
        .rotate()
        .resize(Number(m[1]), Number(m[2]), { fit: "inside", withoutEnlargement: true })
        .jpeg({ quality: 80 })
        .toBuffer();
      res.writeHead(200, { "content-type": "image/jpeg" });
      res.end(body);
    } catch (e) {
      res.writeHead(500);
      res.end(String(e));
    }
  })
  .listen(port, "127.0.0.1");
