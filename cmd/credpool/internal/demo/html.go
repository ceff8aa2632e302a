// html.go writes the comparison as a self-contained HTML page: the day, the
// numbers with what each means, each key's timeline as an inline SVG chart,
// and the verdict. It needs no script and loads nothing: the styles are in
// the page, and html/template escapes every value put in it.

package demo

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"github.com/credpool/credpool/cmd/credpool/internal/human"
)

//go:embed report.html
var reportHTML string

var reportTemplate = template.Must(template.New("report").Parse(reportHTML))

// The chart's geometry, in pixels.
const (
	cellWidth  = 14
	rowHeight  = 20
	labelWidth = 96
	axisHeight = 22
	chartWidth = labelWidth + columns*cellWidth + 190
)

// htmlReport is what the template shows.
type htmlReport struct {
	Intro   string
	Day     []string
	Figures []htmlFigure
	Charts  []svgChart
	Legend  []string
	Claims  []htmlClaim
}

type htmlFigure struct{ Name, Naive, Credpool, Means string }

type htmlClaim struct {
	Held bool
	Text string
}

// svgChart is one leg's timeline.
type svgChart struct {
	Title         string
	Width, Height int
	Ticks         []svgTick
	Rows          []svgRow
}

type svgTick struct {
	X     int
	Label string
}

// svgRow is a key's row, or the row of failed requests.
type svgRow struct {
	Label, Summary string
	Y, TextY, BarY int
	SummaryX       int
	Cells          []svgCell
}

// svgCell is one half hour of a row; Title is its tooltip.
type svgCell struct {
	X, W         int
	Class, Title string
	Failed       bool   // an attempt with the key failed: a red bar on the cell
	Text         string // the count in the failed row
	TextX        int
}

// writeHTML writes the report to w.
func (c *comparison) writeHTML(w io.Writer) error {
	r := htmlReport{Intro: c.intro(), Day: c.day(), Legend: timelineLegend}
	for _, f := range c.figures() {
		r.Figures = append(r.Figures, htmlFigure{f.name, f.naive, f.credpool, f.means})
	}
	for _, l := range []*leg{c.naive, c.credpool} {
		r.Charts = append(r.Charts, c.chart(l))
	}
	for _, cl := range c.claims() {
		r.Claims = append(r.Claims, htmlClaim{cl.held, cl.text})
	}
	return reportTemplate.Execute(w, r)
}

// chart lays out l's timeline as an SVG chart.
func (c *comparison) chart(l *leg) svgChart {
	tl := newTimeline(l, len(c.labels))
	ch := svgChart{Title: l.name, Width: chartWidth, Height: axisHeight + (len(c.labels)+1)*rowHeight + 4}
	for col := 0; col <= columns; col += 6 {
		ch.Ticks = append(ch.Ticks, svgTick{X: labelWidth + col*cellWidth, Label: timeOfDay(time.Duration(col) * column)})
	}
	row := func(i int, label, summary string) svgRow {
		y := axisHeight + i*rowHeight
		return svgRow{Label: label, Summary: summary, Y: y + 2, TextY: y + rowHeight - 6, BarY: y + 12, SummaryX: labelWidth + columns*cellWidth + 10}
	}
	for k, label := range c.labels {
		r := row(k, label, fmt.Sprintf("sent %d, failed %d", tl.sent[k], tl.refused[k]))
		for col, m := range tl.states[k] {
			title := fmt.Sprintf("%s %s: %s", label, halfHour(col), markWords[m])
			if tl.refusedIn[k][col] {
				title += "; " + markWords[markFailed]
			}
			r.Cells = append(r.Cells, svgCell{X: labelWidth + col*cellWidth, W: cellWidth - 1, Class: markClass[m],
				Failed: tl.refusedIn[k][col], Title: title})
		}
		ch.Rows = append(ch.Rows, r)
	}
	r := row(len(c.labels), "failed", human.Plural(len(l.failed), "request"))
	for col, n := range tl.failed {
		cell := svgCell{X: labelWidth + col*cellWidth, W: cellWidth - 1, Class: "none",
			Title: fmt.Sprintf("%s: %s failed", halfHour(col), human.Plural(n, "request")), TextX: labelWidth + col*cellWidth + cellWidth/2}
		if n > 0 {
			cell.Class, cell.Text = "lost", fmt.Sprint(n)
		}
		r.Cells = append(r.Cells, cell)
	}
	ch.Rows = append(ch.Rows, r)
	return ch
}

// halfHour names cell col's stretch of the day, "11:00-11:30".
func halfHour(col int) string {
	from := time.Duration(col) * column
	return timeOfDay(from) + "-" + timeOfDay(from+column)
}

// The CSS class and the words of each mark.
var (
	markClass = map[mark]string{markOK: "ok", markCooling: "cooling", markDead: "dead", markFailed: "failed"}
	markWords = map[mark]string{
		markOK:      "in rotation",
		markCooling: "cooling, out of rotation until it may return",
		markDead:    "dead, out of rotation for good",
		markFailed:  "an attempt with the key failed",
	}
)
