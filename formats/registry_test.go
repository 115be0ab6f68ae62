package formats

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedPolicy(t *testing.T) {
	p := DefaultPolicy()
	for _, c := range []struct {
		id     Identification
		action string
		tool   string
	}{
		{Identification{PUID: "fmt/477", MIME: "application/pdf"}, ActionKeep, ""},
		{Identification{PUID: "fmt/276", MIME: "application/pdf"}, ActionPDFA, ToolGhostscript},
		{OFD, ActionKeep, ""},
		{Identification{PUID: "fmt/43", MIME: "image/jpeg"}, ActionPDFA, ToolImageGS},
		{Identification{PUID: "fmt/412"}, ActionPDFA, ToolLibreOffice},
		{Identification{PUID: "fmt/214"}, ActionPDFA, ToolLibreOffice},
		{Identification{PUID: "fmt/96"}, ActionPDFA, ToolLibreOffice},
		{Identification{PUID: "x-fmt/111"}, ActionPDFA, ToolLibreOffice},
		{JSON, ActionXML, ToolJSON},
		{XML, ActionXML, ToolC14N},
		{Identification{PUID: "x-fmt/409"}, ActionRefuse, ""},
	} {
		if r := p.Rule(c.id); r.Action != c.action || r.Tool != c.tool {
			t.Errorf("%s: %s/%s, want %s/%s", c.id.PUID, r.Action, r.Tool, c.action, c.tool)
		}
	}
	var out bytes.Buffer
	p.Print(&out, func(string) string { return "installed" })
	if !strings.Contains(out.String(), "word processing") || strings.Count(out.String(), "\n") != len(p.Rules)+1 {
		t.Errorf("print:\n%s", out.String())
	}
}

// A policy file's rules go before the shipped ones: here HTML is refused and PDFs kept.
func TestPolicyFileOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.json")
	os.WriteFile(path, []byte(`{"format":"dangan-format-policy/1","rules":[
	 {"name":"no HTML","match":["fmt/96","fmt/471"],"action":"refuse"},
	 {"name":"PDF as is","match":["family:pdf"],"action":"keep"}]}`), 0o644)
	p, err := LoadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := p.Rule(Identification{PUID: "fmt/96"}); r.Action != ActionRefuse {
		t.Errorf("HTML: %+v", r)
	}
	if r := p.Rule(Identification{PUID: "fmt/276", MIME: "application/pdf"}); r.Action != ActionKeep {
		t.Errorf("PDF: %+v", r)
	}
	if r := p.Rule(Identification{PUID: "fmt/412"}); r.Tool != ToolLibreOffice {
		t.Errorf("DOCX falls through to the shipped rule: %+v", r)
	}
	// Through Prepare: the HTML is refused by the file's rule.
	_, err = Prepare(t.Context(), bytes.NewReader([]byte("<html><body>x</body></html>")), nil, "a.html",
		PrepareOptions{NewSink: func() (Sink, error) { return &MemSink{}, nil }, Tools: &Tools{Policy: p}})
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("HTML under the file's policy: %v", err)
	}
}

func TestBadPolicyFiles(t *testing.T) {
	for name, body := range map[string]string{
		"format":   `{"format":"other","rules":[]}`,
		"action":   `{"format":"dangan-format-policy/1","rules":[{"name":"x","match":["*"],"action":"burn"}]}`,
		"tool":     `{"format":"dangan-format-policy/1","rules":[{"name":"x","match":["*"],"action":"pdfa","tool":"c14n"}]}`,
		"match":    `{"format":"dangan-format-policy/1","rules":[{"name":"x","action":"keep"}]}`,
		"fallback": `{"format":"dangan-format-policy/1","rules":[{"name":"x","match":["*"],"action":"pdfa","tool":"libreoffice","fallback":"ignore"}]}`,
		"unknown":  `{"format":"dangan-format-policy/1","rules":[],"extra":1}`,
	} {
		path := filepath.Join(t.TempDir(), "p.json")
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := LoadPolicy(path); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
