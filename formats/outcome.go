package formats

// Outcome is what Prepare would now make of a file of one identification under the
// tools' policy and the converters installed: the archival copy's target ("" when the file
// is kept as it is) and the tool that would make it, named as Prepare records it.
// Migration plans compare it with what a package's documents were made with.
type Outcome struct {
	Rule   string `json:"rule"`
	Action string `json:"action"` // keep, pdfa, xml or refuse; a missing tool's fallback applied
	Target string `json:"target"` // "PDF/A-2b", "PDF", "XML", or "" (kept as it is)
	Tool   string `json:"tool,omitempty"`
}

// Outcome is what the policy would now do with a file of this identification. What
// depends on the file itself is not known here: a signed PDF keeps its original as the
// archival copy, and an XML file already canonical keeps one copy.
func (t *Tools) Outcome(id Identification) Outcome {
	pol := t.Policy
	if pol == nil {
		pol = DefaultPolicy()
	}
	rule := pol.Rule(id)
	o := Outcome{Rule: rule.Name, Action: rule.Action}
	switch rule.Action {
	case ActionKeep, ActionRefuse:
		return o
	case ActionXML:
		o.Target, o.Tool = "XML", ToolXMLC14N
		if rule.Tool == ToolJSON {
			o.Tool = ToolJSONToXML
		}
		return o
	}
	switch rule.Tool {
	case ToolGhostscript:
		if t.PDFA == nil {
			if rule.Fallback == ActionKeep {
				o.Action = ActionKeep
			} else {
				o.Action = ActionRefuse
			}
			return o
		}
		o.Target, o.Tool = "PDF/A-2b", t.PDFA.Version()
	case ToolImageGS:
		if t.PDFA == nil {
			if rule.Fallback == FallbackPDF {
				o.Target, o.Tool = "PDF", ToolPDFImport
			} else {
				o.Action = ActionRefuse
			}
			return o
		}
		o.Target, o.Tool = "PDF/A-2b", ToolPDFImport+" + "+t.PDFA.Version()
	case ToolLibreOffice:
		if t.Office == nil {
			o.Action = ActionRefuse
			return o
		}
		o.Target, o.Tool = "PDF/A-2b", t.Office.Version()
	default:
		o.Action = ActionRefuse
	}
	return o
}
