package main

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// A small SVG line-chart writer: enough for the results' plots, with no
// plotting dependency. A figure is a grid of panels sharing one legend.

// scaleKind maps values onto an axis.
type scaleKind int

const (
	linear scaleKind = iota
	logarithmic
	// nines spreads quantiles by their number of nines: 0.9 → 1, 0.99 →
	// 2, 0.999 → 3; 1 (the maximum) sits one step past the last.
	nines
)

type point struct{ x, y float64 }

type series struct {
	name   string
	color  string
	dashed bool
	points []point
}

type chart struct {
	title          string
	xLabel, yLabel string
	xScale, yScale scaleKind
	// yFromZero starts a linear y axis at 0.
	yFromZero bool
	// xTicks, when set, are the x ticks (value → label).
	xTicks []tick
	series []series
}

type tick struct {
	v     float64
	label string
}

type figure struct {
	title  string
	cols   int
	charts []chart
}

const (
	panelW, panelH = 440, 300
	marginL        = 70
	marginR        = 16
	marginT        = 34
	marginB        = 46
	legendRowH     = 18
)

// axis is one axis of a chart, with its range in scale units.
type axis struct {
	kind     scaleKind
	min, max float64
}

func (a axis) unit(v float64) float64 {
	switch a.kind {
	case logarithmic:
		return math.Log10(v)
	case nines:
		if v >= 1 {
			return math.Inf(1) // placed by the caller
		}
		return -math.Log10(1 - v)
	}
	return v
}

// pos is v's place on the axis, 0 to 1.
func (a axis) pos(v float64) float64 {
	u := a.unit(v)
	if math.IsInf(u, 1) {
		return 1
	}
	if a.max == a.min {
		return 0.5
	}
	return (u - a.min) / (a.max - a.min)
}

// newAxis fits an axis to values.
func newAxis(kind scaleKind, values []float64, fromZero bool) axis {
	a := axis{kind: kind, min: math.Inf(1), max: math.Inf(-1)}
	maxQ := 0.0
	for _, v := range values {
		if kind == logarithmic && v <= 0 {
			continue
		}
		if kind == nines && v >= 1 {
			continue
		}
		u := a.unit(v)
		a.min, a.max = math.Min(a.min, u), math.Max(a.max, u)
		maxQ = math.Max(maxQ, u)
	}
	if math.IsInf(a.min, 1) {
		a.min, a.max = 0, 1
	}
	switch kind {
	case logarithmic:
		a.min, a.max = math.Floor(a.min*10)/10, math.Ceil(a.max*10)/10
		if a.max-a.min < 0.3 {
			a.min, a.max = a.min-0.15, a.max+0.15
		}
	case nines:
		a.min, a.max = 0, math.Ceil(maxQ)+1 // room for the maximum
	default:
		if fromZero {
			a.min = math.Min(0, a.min)
		}
		step := niceStep((a.max - a.min) / 5)
		a.min, a.max = math.Floor(a.min/step)*step, math.Ceil(a.max/step)*step
		if a.max == a.min {
			a.max = a.min + step
		}
	}
	return a
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// ticks are the axis's labelled values.
func (a axis) ticks(format func(float64) string) []tick {
	var out []tick
	switch a.kind {
	case logarithmic:
		for e := math.Floor(a.min); e <= math.Ceil(a.max); e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if u := math.Log10(v); u >= a.min-1e-9 && u <= a.max+1e-9 {
					out = append(out, tick{v, format(v)})
				}
			}
		}
	case nines:
		out = append(out, tick{0.5, "p50"})
		for n := 1.0; n < a.max; n++ {
			q := 1 - math.Pow(10, -n)
			out = append(out, tick{q, "p" + strconv.FormatFloat(100*q, 'f', -1, 64)})
		}
		out = append(out, tick{1, "max"})
	default:
		step := niceStep((a.max - a.min) / 5)
		for v := a.min; v <= a.max+step/1e6; v += step {
			out = append(out, tick{v, format(v)})
		}
	}
	return out
}

// svg renders the figure.
func (f figure) svg() []byte {
	cols := max(1, f.cols)
	rows := (len(f.charts) + cols - 1) / cols
	var legend []series
	seen := map[string]bool{}
	for _, c := range f.charts {
		for _, s := range c.series {
			if !seen[s.name] {
				seen[s.name] = true
				legend = append(legend, s)
			}
		}
	}
	legendPerRow := max(1, cols*panelW/170)
	legendRows := (len(legend) + legendPerRow - 1) / legendPerRow
	width, height := cols*panelW, 30+rows*panelH+legendRows*legendRowH+10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14" text-anchor="middle" font-weight="bold">%s</text>`+"\n", width/2, esc(f.title))
	for i, c := range f.charts {
		x0, y0 := (i%cols)*panelW, 30+(i/cols)*panelH
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)">`+"\n", x0, y0)
		c.render(&b)
		b.WriteString("</g>\n")
	}
	ly := 30 + rows*panelH
	for i, s := range legend {
		x := 20 + (i%legendPerRow)*170
		y := ly + (i/legendPerRow)*legendRowH + 10
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>`, x, y, x+24, y, s.color, dash(s.dashed))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", x+30, y+4, esc(s.name))
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func (c chart) render(b *strings.Builder) {
	var xs, ys []float64
	for _, s := range c.series {
		for _, p := range s.points {
			xs, ys = append(xs, p.x), append(ys, p.y)
		}
	}
	for _, t := range c.xTicks {
		xs = append(xs, t.v)
	}
	ax, ay := newAxis(c.xScale, xs, false), newAxis(c.yScale, ys, c.yFromZero)
	w, h := float64(panelW-marginL-marginR), float64(panelH-marginT-marginB)
	px := func(v float64) float64 { return marginL + ax.pos(v)*w }
	py := func(v float64) float64 { return marginT + (1-ay.pos(v))*h }

	fmt.Fprintf(b, `<text x="%d" y="18" font-size="12" text-anchor="middle">%s</text>`+"\n", marginL+int(w)/2, esc(c.title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", marginL, marginT, w, h)
	for _, t := range ay.ticks(formatNumber) {
		y := py(t.v)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`, marginL, y, marginL+w, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginL-4, y+4, esc(t.label))
	}
	xt := c.xTicks
	if xt == nil {
		xt = ax.ticks(formatNumber)
	}
	for _, t := range xt {
		x := px(t.v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e4e4e4"/>`, x, marginT, x, marginT+h)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, marginT+h+14, esc(t.label))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", marginL+int(w)/2, panelH-12, esc(c.xLabel))
	fmt.Fprintf(b, `<text transform="translate(14,%d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+int(h)/2, esc(c.yLabel))
	for _, s := range c.series {
		var pts []string
		for _, p := range s.points {
			if (c.xScale == logarithmic && p.x <= 0) || (c.yScale == logarithmic && p.y <= 0) {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.x), py(p.y)))
		}
		if len(pts) == 0 {
			continue
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash(s.dashed))
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, x, y, s.color)
		}
		b.WriteString("\n")
	}
}

func dash(dashed bool) string {
	if dashed {
		return ` stroke-dasharray="6,4"`
	}
	return ""
}

func esc(s string) string { return html.EscapeString(s) }

// formatNumber writes a tick value briefly: 1200 → 1.2k.
func formatNumber(v float64) string {
	av := math.Abs(v)
	switch {
	case av >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 4, 64) + "M"
	case av >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
