package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/dangan-archive/dangan/archive"
)

// page is what every template gets: the words' language, who is signed in, the page's own
// data and an error message key.
type page struct {
	Title string
	Lang  string
	User  *signedInAs
	Error string
	Data  any
	// Refresh, when set, reloads the page after this many seconds (progress without script).
	Refresh int
}

// parsePages parses every page once for each language, with T giving that language's
// word for a key (the key itself when there is none, which a test catches).
func parsePages() map[string]map[string]*template.Template {
	out := map[string]map[string]*template.Template{}
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	for lang, dict := range words {
		out[lang] = map[string]*template.Template{}
		funcs := template.FuncMap{"T": func(key string) string {
			if v, ok := dict[key]; ok {
				return v
			}
			return key
		}}
		for _, name := range names {
			base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
			if base == "layout" {
				continue
			}
			t := template.New("layout.html").Funcs(funcs)
			out[lang][base] = template.Must(t.ParseFS(templateFiles, "templates/layout.html", name))
		}
	}
	return out
}

// render writes a page in the request's language; a page that fails to render is a 500
// with nothing of it sent.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Lang = language(w, r)
	if s, ok := current(r); ok {
		p.User = &s
	}
	var buf bytes.Buffer
	if err := c.pages[p.Lang][name].Execute(&buf, p); err != nil {
		c.log.Error("console page", "page", name, "err", err)
		http.Error(w, "page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail answers an archive error as a page: another department's record is a 404 like a
// missing one; a read that needs a purpose goes back to the record to ask for it.
func (c *console) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "unavailable"
	switch {
	case errors.Is(err, archive.ErrNotFound):
		status, msg = http.StatusNotFound, "notFound"
	case errors.Is(err, archive.ErrForbidden):
		status, msg = http.StatusForbidden, "forbidden"
	case errors.Is(err, archive.ErrGone):
		status, msg = http.StatusGone, "gone"
	case errors.Is(err, archive.ErrInvalidCase):
		status, msg = http.StatusUnprocessableEntity, "needPurpose"
	case errors.Is(err, archive.ErrUnavailable):
		status = http.StatusServiceUnavailable
	default:
		c.log.Error("console", "path", r.URL.Path, "err", err)
	}
	c.render(w, r, status, "error", page{Title: msg, Data: msg})
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
