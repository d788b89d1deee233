// The sharp peer of the benchmark: what a Node user would write, sharp's
// defaults throughout (its libvips thread pool, libuv's 4 worker threads,
// each encoder's default effort and settings). GET /fit/WxH/FILE answers
// FILE (from the directory given on the command line) fitted inside WxH,
// never enlarged, as a JPEG of quality 80; /fit/WxH/FORMAT/QUALITY/FILE in
// FORMAT (jpeg, webp, avif: at QUALITY; png: sharp's PNG defaults, QUALITY
// ignored).
//
//   node bench/sharp_server.js PORT PHOTO_DIR
const http = require("http");
const path = require("path");
const sharp = require("sharp");

const [port, root] = [Number(process.argv[2]), process.argv[3]];
const TYPES = { jpeg: "image/jpeg", webp: "image/webp", avif: "image/avif", png: "image/png" };

http
  .createServer(async (req, res) => {
    if (req.url === "/health") {
      res.writeHead(200);
      return res.end("ok");
    }
    const m = req.url.match(/^\/fit\/(\d+)x(\d+)\/(?:(jpeg|webp|avif|png)\/(\d+)\/)?([\w.-]+)$/);
    if (!m) {
      res.writeHead(404);
      return res.end();
    }
    const [format, quality] = [m[3] || "jpeg", Number(m[4] || 80)];
    try {
      let image = sharp(path.join(root, m[5]))
        .rotate()
        .resize(Number(m[1]), Number(m[2]), { fit: "inside", withoutEnlargement: true });
      image = format === "png" ? image.png() : image[format]({ quality });
      const body = await image.toBuffer();
      res.writeHead(200, { "content-type": TYPES[format] });
      res.end(body);
    } catch (e) {
      res.writeHead(500);
      res.end(String(e));
    }
  })
  .listen(port, "127.0.0.1");
