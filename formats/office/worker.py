# dangan's LibreOffice worker: starts one headless LibreOffice with its own user profile,
# then converts documents to PDF/A-2b, one request per line on stdin (JSON), one answer per
# line on stdout. The Go pool (pool.go) starts, times and replaces it.
import json
import os
import subprocess
import sys
import time

import uno
from com.sun.star.beans import PropertyValue


def pv(name, value):
    p = PropertyValue()
    p.Name = name
    p.Value = value
    return p


def answer(obj):
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


soffice, pipe, profile = sys.argv[1], sys.argv[2], sys.argv[3]
proc = subprocess.Popen(
    [soffice, "--headless", "--invisible", "--nologo", "--norestore", "--nodefault", "--nolockcheck",
     "--nofirststartwizard", "-env:UserInstallation=" + uno.systemPathToFileUrl(profile),
     "--accept=pipe,name=%s;urp;" % pipe],
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
local = uno.getComponentContext()
resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
ctx = None
deadline = time.time() + 60
while ctx is None:
    try:
        ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
    except Exception as e:
        if time.time() > deadline or proc.poll() is not None:
            answer({"ready": False, "error": "LibreOffice did not start: %s" % e})
            sys.exit(1)
        time.sleep(0.05)
desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
answer({"ready": True, "pid": proc.pid})

IMPORT = {
    # Plain text and CSV are read as UTF-8 (the pool converts other encodings first).
    "txt": [pv("FilterName", "Text (encoded)"), pv("FilterOptions", "UTF8,LF,,,")],
    "csv": [pv("FilterName", "Text - txt - csv (StarCalc)"), pv("FilterOptions", "44,34,76,1")],
}

for line in sys.stdin:
    req = json.loads(line)
    doc = None
    try:
        props = [pv("Hidden", True), pv("ReadOnly", True), pv("UpdateDocMode", 0),
                 pv("MacroExecutionMode", 0)] + IMPORT.get(req.get("kind", ""), [])
        doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(req["in"]), "_blank", 0, tuple(props))
        if doc is None:
            raise RuntimeError("LibreOffice cannot read the file")
        if doc.supportsService("com.sun.star.sheet.SpreadsheetDocument"):
            export = "calc_pdf_Export"
        elif doc.supportsService("com.sun.star.text.WebDocument"):
            export = "writer_web_pdf_Export"
        else:
            export = "writer_pdf_Export"
        if req.get("title"):
            doc.getDocumentProperties().Title = req["title"]
        data = uno.Any("[]com.sun.star.beans.PropertyValue", (
            pv("SelectPdfVersion", 2), pv("UseTaggedPDF", True), pv("EmbedStandardFonts", True)))
        doc.storeToURL(uno.systemPathToFileUrl(req["out"]), (pv("FilterName", export), pv("FilterData", data)))
        answer({"ok": True, "filter": export})
    except Exception as e:
        answer({"ok": False, "error": str(e).strip() or type(e).__name__})
    finally:
        if doc is not None:
            try:
                doc.close(True)
            except Exception:
                pass
