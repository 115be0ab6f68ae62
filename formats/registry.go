package formats

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// The format policy: data, not code. For each PRONOM id (or "ofd", or a family such as
// "family:pdf", or "*"), the action (keep, convert to PDF/A-2b, convert to XML, refuse),
// the tool, and what to do when the tool is not installed. dangan ships policy.json; a
// configuration file in the same form puts its rules before the defaults.

//go:embed policy.json
var defaultPolicy []byte

// Actions.
const (
	ActionKeep   = "keep"   // the file is the archival copy (after its check)
	ActionPDFA   = "pdfa"   // a PDF/A-2b rendition is the archival copy
	ActionXML    = "xml"    // a canonical XML rendition is the archival copy
	ActionRefuse = "refuse" // not archived: 415
	// fallbacks when the tool is missing
	FallbackPDF = "pdf" // scans: a plain PDF (pdfcpu) instead of PDF/A-2b
)

// Tools.
const (
	ToolGhostscript = "ghostscript"
	ToolImageGS     = "pdfcpu+ghostscript"
	ToolLibreOffice = "libreoffice"
	ToolJSON        = "json-to-xml"
	ToolC14N        = "c14n"
)

// Rule is one entry of the policy.
type Rule struct {
	Name     string   `json:"name"`
	Match    []string `json:"match"`
	Action   string   `json:"action"`
	Tool     string   `json:"tool,omitempty"`
	Fallback string   `json:"fallback,omitempty"` // when the tool is missing: keep, pdf; empty: refuse
	Note     string   `json:"note,omitempty"`
}

// Policy is an ordered list of rules; the first that matches decides.
type Policy struct {
	Format string `json:"format"`
	Rules  []Rule `json:"rules"`
}

// PolicyFormat is the policy file's format name.
const PolicyFormat = "dangan-format-policy/1"

// ErrPolicy is returned (wrapped) for a policy file that is not valid.
var ErrPolicy = errors.New("invalid format policy")

// DefaultPolicy is the shipped policy.
func DefaultPolicy() *Policy {
	p, err := parsePolicy(bytes.NewReader(defaultPolicy))
	if err != nil {
		panic(fmt.Sprintf("formats: the shipped policy does not parse: %v", err))
	}
	return p
}

// LoadPolicy reads a policy file and returns its rules followed by the defaults.
func LoadPolicy(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("format policy: %w", err)
	}
	defer f.Close()
	p, err := parsePolicy(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.Rules = append(p.Rules, DefaultPolicy().Rules...)
	return p, nil
}

func parsePolicy(r io.Reader) (*Policy, error) {
	var p Policy
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	if p.Format != PolicyFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrPolicy, p.Format, PolicyFormat)
	}
	tools := map[string][]string{ActionKeep: {""}, ActionRefuse: {""}, ActionPDFA: {ToolGhostscript, ToolImageGS, ToolLibreOffice}, ActionXML: {ToolJSON, ToolC14N}}
	for i, r := range p.Rules {
		ok, known := false, tools[r.Action]
		for _, t := range known {
			ok = ok || t == r.Tool
		}
		switch {
		case known == nil:
			return nil, fmt.Errorf("%w: rule %d (%s): action %q (keep, pdfa, xml or refuse)", ErrPolicy, i+1, r.Name, r.Action)
		case !ok:
			return nil, fmt.Errorf("%w: rule %d (%s): tool %q does not do %s (use one of %q)", ErrPolicy, i+1, r.Name, r.Tool, r.Action, known)
		case len(r.Match) == 0:
			return nil, fmt.Errorf("%w: rule %d (%s): matches nothing", ErrPolicy, i+1, r.Name)
		case r.Fallback != "" && r.Fallback != ActionKeep && r.Fallback != FallbackPDF:
			return nil, fmt.Errorf("%w: rule %d (%s): fallback %q (keep or pdf)", ErrPolicy, i+1, r.Name, r.Fallback)
		}
	}
	return &p, nil
}

// Rule returns the first rule that matches id.
func (p *Policy) Rule(id Identification) Rule {
	for _, r := range p.Rules {
		for _, m := range r.Match {
			if m == "*" || m == id.PUID || m == "family:"+id.Family() {
				return r
			}
		}
	}
	return Rule{Name: "no rule", Action: ActionRefuse}
}

// Accepted lists what the policy archives, for 415 answers.
func (p *Policy) Accepted() string {
	var names []string
	for _, r := range p.Rules {
		if r.Action != ActionRefuse {
			names = append(names, r.Name)
		}
	}
	return strings.Join(names, "; ")
}

// Print writes the policy as a table, with whether each tool is installed.
func (p *Policy) Print(w io.Writer, installed func(tool string) string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FORMATS\tMATCH\tACTION\tTOOL\tIF MISSING")
	for _, r := range p.Rules {
		tool, missing := "-", "-"
		if r.Tool != "" {
			state := installed(r.Tool)
			tool = r.Tool + " (" + state + ")"
			if state != "built in" {
				missing = "refuse (415)"
				if r.Fallback != "" {
					missing = r.Fallback
				}
			}
		}
		match := strings.Join(r.Match, " ")
		if len(match) > 48 {
			match = match[:45] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, match, r.Action, tool, missing)
	}
	return tw.Flush()
}
