// output_test.go tests what the comparison prints and writes: plain
// characters unless colours were asked for, every number explained, a
// well-formed self-contained HTML page with its SVG charts, and never a key.

package demo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTextOutput(t *testing.T) {
	c := playDay(t)
	var plain bytes.Buffer
	c.printText(&plain, painter(UseColor(&plain))) // a buffer is no terminal
	out := plain.String()
	t.Log("\n" + out)
	assert.NotContains(t, out, "\033[", "no colour off a terminal")

	assert.Contains(t, out, "naive pool   credpool")
	for _, f := range c.figures() {
		assert.Regexp(t, `(?m)^  `+f.name+` +`+f.naive+` +`+f.credpool+`$`, out, "the number, side by side")
		assert.Contains(t, out, "\n"+f.name+": ", "and what it means")
	}
	assert.Contains(t, out, "06    09    12    15    18    21    00    03    06")
	assert.Regexp(t, `(?m)^  sk-…REVK    =+!x+  sent \d+, failed 1$`, out, "credpool's revoked key: dead from its first 401")
	for _, line := range timelineLegend {
		assert.Contains(t, out, line)
	}
	assert.Equal(t, 3, strings.Count(out, "\nOK: "), "every claim held")

	var colour bytes.Buffer
	c.printText(&colour, painter(true))
	assert.Contains(t, colour.String(), ansiRed+"!"+ansiReset)
	stripped := strings.NewReplacer(ansiReset, "", ansiBold, "", ansiGreen, "", ansiYellow, "", ansiGrey, "", ansiRed, "").Replace(colour.String())
	assert.Equal(t, out, stripped, "the same text, coloured")
}

func TestHTMLReport(t *testing.T) {
	c := playDay(t)
	var buf bytes.Buffer
	require.NoError(t, c.writeHTML(&buf))
	page := buf.String()

	// Well-formed: it parses as XML, every element closed.
	d := xml.NewDecoder(strings.NewReader(page))
	var open []string
	svgs, rects := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch tok := tok.(type) {
		case xml.StartElement:
			open = append(open, tok.Name.Local)
			switch tok.Name.Local {
			case "svg":
				svgs++
			case "rect":
				rects++
			}
		case xml.EndElement:
			require.NotEmpty(t, open)
			open = open[:len(open)-1]
		}
	}
	assert.Empty(t, open, "every element closed")
	assert.Equal(t, 2, svgs, "a chart per pool")
	assert.GreaterOrEqual(t, rects, 2*(len(c.labels)+1)*columns, "a cell per key and half hour")

	// Self-contained: no script, nothing to load.
	for _, external := range []string{"<script", "src=", "href=", "url(", "@import", "<link"} {
		assert.NotContains(t, page, external)
	}
	for _, f := range c.figures() {
		assert.Contains(t, page, "<td>"+f.name+"</td><td>"+f.naive+"</td><td class=\"credpool\">"+f.credpool+"</td>")
	}
	assert.Contains(t, page, "sk-…REVK")
}

// TestNoKeyInOutput looks for every demo key, and any part of one beyond
// what its label shows, in everything the demos print and write.
func TestNoKeyInOutput(t *testing.T) {
	c := playDay(t)
	var text, colour, page, live, progress bytes.Buffer
	c.printText(&text, false)
	c.printText(&colour, true)
	require.NoError(t, c.writeHTML(&page))
	require.NoError(t, Live(t.Context(), LiveOptions{Requests: 20, Concurrency: 4}, &live, &progress))
	for name, out := range map[string]string{"text": text.String(), "colour": colour.String(), "html": page.String(), "live": live.String() + progress.String()} {
		for _, k := range demoKeys {
			assert.NotContains(t, out, k.key, name)
			assert.NotContains(t, out, k.key[:len(k.key)-4], name)
		}
		assert.NotContains(t, out, "sk-demo", name)
	}
}
