// Progress without a reload: on a page with a long operation running (body[data-refresh]),
// fetch the same page again every few seconds and put its live parts ([data-live] elements,
// by id) in place of the shown ones, leaving forms being filled in alone. It stops when the
// page fetched no longer asks for a refresh. Without script, the page's <noscript> refresh
// reloads it instead.
const every = Number(document.body.dataset.refresh || 0) * 1000;

async function poll() {
  let next;
  try {
    const resp = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!resp.ok) throw new Error(resp.status);
    next = new DOMParser().parseFromString(await resp.text(), "text/html");
  } catch (e) {
    setTimeout(poll, every); // a failed poll is tried again; the page stays as it was
    return;
  }
  for (const el of document.querySelectorAll("[data-live][id]")) {
    const fresh = next.getElementById(el.id);
    if (fresh) el.replaceWith(document.importNode(fresh, true));
  }
  if (next.body.dataset.refresh) {
    setTimeout(poll, every);
  } else {
    delete document.body.dataset.refresh; // done: a test or a person can see it stopped
  }
}

if (every > 0) setTimeout(poll, every);
