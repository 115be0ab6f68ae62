package main

import (
	"encoding/json"
	"flag"
	"os"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/office"
	"github.com/dangan-archive/dangan/formats/pdfa"
)

// cmdFormats prints the format policy: what each format becomes, with which tool, and
// whether that tool is installed here.
func cmdFormats(args []string) error {
	fs := flag.NewFlagSet("formats", flag.ExitOnError)
	file := fs.String("format-policy", "", "a policy file whose rules go before the shipped ones")
	asJSON := fs.Bool("json", false, "print the policy as JSON (the form a policy file takes)")
	fs.Parse(args)
	p := formats.DefaultPolicy()
	if *file != "" {
		var err error
		if p, err = formats.LoadPolicy(*file); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", " ")
		return enc.Encode(p)
	}
	gs, gsErr := pdfa.Find()
	var ocfg office.Config
	loErr := office.Find(&ocfg)
	return p.Print(os.Stdout, func(tool string) string {
		switch tool {
		case formats.ToolGhostscript, formats.ToolImageGS:
			if gsErr != nil {
				return "not installed: apt install ghostscript"
			}
			return gs.Version()
		case formats.ToolLibreOffice:
			if loErr != nil {
				return "not installed: apt install libreoffice-writer-nogui libreoffice-calc-nogui python3-uno fonts-wqy-zenhei"
			}
			return "installed"
		}
		return "built in"
	})
}
