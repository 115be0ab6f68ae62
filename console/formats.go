package console

import (
	"net/http"

	"github.com/dangan-archive/dangan/formats"
)

// formatsData is 系统管理 · 格式策略: the format policy's rules in the order they decide (the
// configured ones before the shipped ones), with whether each rule's tool is installed.
type formatsData struct {
	Rules []formats.Rule
	Tools map[string]string
}

func (c *console) formats(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	p, tools, err := c.a.FormatPolicy(s.Who)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "formats", page{Title: "formats", Data: formatsData{Rules: p.Rules, Tools: tools}})
}
