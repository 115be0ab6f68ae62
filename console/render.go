package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
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

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t := template.New("layout.html").Funcs(template.FuncMap{
			"T":    func(string) string { return "" }, // replaced per request
			"kind": func(string) string { return "" },
		})
		out[base] = template.Must(t.ParseFS(templateFiles, "templates/layout.html", name))
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
	dict := words[p.Lang]
	t, err := c.pages[name].Clone()
	if err != nil {
		http.Error(w, "template", http.StatusInternalServerError)
		return
	}
	t.Funcs(template.FuncMap{
		"T": func(key string) string {
			if v, ok := dict[key]; ok {
				return v
			}
			return key
		},
		"kind": func(k string) string {
			if v, ok := dict["kind."+k]; ok {
				return v
			}
			return k
		},
	})
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		c.log.Error("console page", "page", name, "err", err)
		http.Error(w, "page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
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
