package archive

import (
	"errors"
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
