// Package redact makes the public copy of a record's text: personal data (identity
// numbers, phone numbers, addresses, and the applicant's own name and ID number) replaced
// by masks, by a policy that is data (policy.json, shipped; an installation may give its
// own), and an account of what was removed.
//
//	p, _ := redact.Load("")                      // the shipped policy
//	out, removed := p.Text(text, []string{"张三"}) // removed: kind → count
package redact

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

//go:embed policy.json
var shipped []byte

// ErrBadPolicy is returned (wrapped) for a policy file that cannot be used.
var ErrBadPolicy = errors.New("redaction policy")

// Policy says what a public copy leaves out.
type Policy struct {
	Version string `json:"version"`
	Note    string `json:"note,omitempty"`
	Rules   []Rule `json:"rules"`
	// Metadata are the names of description fields left out of a public copy.
	Metadata []string `json:"metadata"`
}

// Rule replaces what its pattern matches by its mask.
type Rule struct {
	Kind    string `json:"kind"`
	Pattern string `json:"pattern"`
	Mask    string `json:"mask"`
	re      *regexp.Regexp
}

// KnownKind is the kind of the case's own personal data (the applicant's name and ID
// number as recorded), replaced wherever it appears.
const KnownKind = "申请人信息"

// Load reads a policy file, or the shipped policy for "".
func Load(path string) (*Policy, error) {
	b := shipped
	if path != "" {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadPolicy, err)
		}
	}
	var p Policy
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrBadPolicy, path, err)
	}
	if p.Version == "" || len(p.Rules) == 0 {
		return nil, fmt.Errorf("%w %s: a version and at least one rule are required", ErrBadPolicy, path)
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Kind == "" || r.Mask == "" {
			return nil, fmt.Errorf("%w %s: rule %d needs a kind and a mask", ErrBadPolicy, path, i)
		}
		re, err := regexp.Compile(r.Pattern)
		if err != nil || r.Pattern == "" {
			return nil, fmt.Errorf("%w %s: rule %d (%s): %v", ErrBadPolicy, path, i, r.Kind, err)
		}
		r.re = re
	}
	return &p, nil
}

// Text returns s with everything the rules match and the case's known personal data
// replaced, and how many of each kind were removed. The rules go first, so that an ID
// number is counted as one whether or not the case recorded it.
func (p *Policy) Text(s string, known []string) (string, map[string]int) {
	removed := map[string]int{}
	for _, r := range p.Rules {
		s = r.re.ReplaceAllStringFunc(s, func(string) string {
			removed[r.Kind]++
			return r.Mask
		})
	}
	// Longest first, so that a name inside a longer known value does not split it.
	ks := append([]string{}, known...)
	sort.Slice(ks, func(i, j int) bool { return len(ks[i]) > len(ks[j]) })
	for _, k := range ks {
		if strings.TrimSpace(k) == "" {
			continue
		}
		if n := strings.Count(s, k); n > 0 {
			s = strings.ReplaceAll(s, k, "［"+KnownKind+"已删除］")
			removed[KnownKind] += n
		}
	}
	return s, removed
}

// Drops reports whether a description field is left out of a public copy.
func (p *Policy) Drops(field string) bool {
	for _, f := range p.Metadata {
		if f == field {
			return true
		}
	}
	return false
}
