package archive

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/office"
	"github.com/dangan-archive/dangan/formats/pdfa"
)

// openConverters loads the format policy and finds LibreOffice and Ghostscript. A missing
// tool is not an error: the formats that need it fall back or are refused with a 415 that
// names the package to install.
func (a *Archive) openConverters() error {
	a.tools = formats.Tools{Policy: formats.DefaultPolicy(), WorkDir: a.tmp, Now: a.now}
	if a.cfg.FormatPolicy != "" {
		p, err := formats.LoadPolicy(a.cfg.FormatPolicy)
		if err != nil {
			return err
		}
		a.tools.Policy = p
	}
	if a.cfg.NoConverters {
		return nil
	}
	if c, err := pdfa.Find(); err == nil {
		if a.cfg.ConvertTimeout > 0 {
			c.Timeout = 2 * a.cfg.ConvertTimeout
		}
		a.tools.PDFA = c
	} else {
		a.log.Warn("PDF/A renditions are off", "reason", err)
	}
	p, err := office.NewPool(office.Config{Workers: a.cfg.OfficeWorkers, Timeout: a.cfg.ConvertTimeout, Dir: filepath.Join(a.tmp, "office")})
	switch {
	case err == nil:
		a.tools.Office = p
	case errors.Is(err, office.ErrUnavailable):
		a.log.Warn("Office, HTML and text documents are refused", "reason", err)
	default:
		return err
	}
	return nil
}

// FormatPolicy is the format policy this archive applies (its configured rules before the
// shipped ones) and, for each tool the policy names, whether it is here: the version or
// "installed", "built in", or "" when it is not installed. For the administrator.
func (a *Archive) FormatPolicy(who Principal) (*formats.Policy, map[string]string, error) {
	if who.Role != RoleAdmin {
		return nil, nil, fmt.Errorf("%w: the format policy is for the administrator", ErrForbidden)
	}
	gs := ""
	if a.tools.PDFA != nil {
		gs = a.tools.PDFA.Version()
	}
	office := ""
	if a.tools.Office != nil {
		office = "installed"
	}
	tools := map[string]string{}
	for _, r := range a.tools.Policy.Rules {
		switch r.Tool {
		case "":
		case formats.ToolGhostscript, formats.ToolImageGS:
			tools[r.Tool] = gs
		case formats.ToolLibreOffice:
			tools[r.Tool] = office
		default:
			tools[r.Tool] = "built in"
		}
	}
	return a.tools.Policy, tools, nil
}
