// The console's PDF viewer: draws a page of the document named by #viewer's data-src with
// the pdf.js served by dangan itself (no other origin, no inline script), and steps pages.
import * as pdfjs from "./pdfjs/pdf.min.mjs";

const base = new URL("./pdfjs/", import.meta.url).href;
pdfjs.GlobalWorkerOptions.workerSrc = base + "pdf.worker.min.mjs";

const viewer = document.getElementById("viewer");
const canvas = document.getElementById("page");
const at = document.getElementById("at");
let pdf = null;
let n = 1;
let rendering = null;

async function draw() {
  if (rendering) {
    rendering.cancel();
  }
  const page = await pdf.getPage(n);
  const viewport = page.getViewport({ scale: 1.5 });
  canvas.width = viewport.width;
  canvas.height = viewport.height;
  rendering = page.render({ canvas, viewport });
  try {
    await rendering.promise;
  } catch (e) {
    if (e && e.name === "RenderingCancelledException") return;
    throw e;
  }
  at.textContent = n + " / " + pdf.numPages;
  viewer.dataset.drawn = String(n);
}

async function open() {
  try {
    pdf = await pdfjs.getDocument({
      url: viewer.dataset.src,
      withCredentials: true,
      cMapUrl: base + "cmaps/",
      cMapPacked: true,
      standardFontDataUrl: base + "standard_fonts/",
      wasmUrl: base + "wasm/",
      iccUrl: base + "iccs/",
      isEvalSupported: false,
    }).promise;
    viewer.hidden = false;
    await draw();
  } catch (e) {
    viewer.dataset.error = String(e && e.message ? e.message : e);
    document.getElementById("failed").hidden = false;
  }
}

document.getElementById("prev").addEventListener("click", () => { if (pdf && n > 1) { n--; draw(); } });
document.getElementById("next").addEventListener("click", () => { if (pdf && n < pdf.numPages) { n++; draw(); } });
open();
