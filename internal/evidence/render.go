package evidence

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"codeberg.org/go-pdf/fpdf"
)

// RenderHTML renders p as its standalone HTML file.
func RenderHTML(ctx context.Context, p Pack) ([]byte, error) {
	var buf bytes.Buffer
	if err := Report(p).Render(ctx, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pdfWriter lays the pack out on A4 pages: the same sections as the HTML,
// each record a short block of lines, every evidence line with its link to
// the portal. fpdf's core fonts are Windows-1252: text goes through its
// translator, after the few signs outside that set are spelled out.
type pdfWriter struct {
	pdf *fpdf.Fpdf
	tr  func(string) string
	p   Pack
}

var pdfSigns = strings.NewReplacer("≥", ">=", "≤", "<=", "→", "->", "←", "<-", "✓", "ok", "…", "...", "\u00a0", " ")

func (w *pdfWriter) text(s string) string { return w.tr(pdfSigns.Replace(s)) }

// RenderPDF renders p as a PDF document.
func RenderPDF(p Pack) ([]byte, error) {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetMargins(15, 15, 15)
	pdf.SetAutoPageBreak(true, 18)
	pdf.SetTitle(fmt.Sprintf("Evidence pack %s %s", p.JurisdictionName, p.Period.String()), true)
	pdf.SetAuthor("Portal", true)
	pdf.SetCreator("Portal evidence pack", true)
	// A fixed creation date: the same pack renders to the same bytes.
	pdf.SetCreationDate(p.GeneratedAt)
	pdf.SetModificationDate(p.GeneratedAt)
	pdf.AliasNbPages("{nb}")
	w := &pdfWriter{pdf: pdf, tr: pdf.UnicodeTranslatorFromDescriptor(""), p: p}
	pdf.SetFooterFunc(func() {
		pdf.SetY(-12)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(100, 100, 100)
		pdf.CellFormat(0, 5, w.text(fmt.Sprintf("Evidence pack %s, %s, generated %s", strings.ToUpper(p.Jurisdiction), p.Period.String(), stamp(p.GeneratedAt))), "", 0, "L", false, 0, "")
		pdf.CellFormat(0, 5, fmt.Sprintf("page %d of {nb}", pdf.PageNo()), "", 0, "R", false, 0, "")
	})
	pdf.AddPage()
	w.cover()
	w.controls()
	w.changes()
	w.exceptions()
	w.drift()
	w.sensitive()
	w.staff()
	w.integrity()
	w.para(8, 90, "This PDF and the HTML file of the same pack are stored by the portal byte for byte; the SHA-256 of each is recorded in the portal's hash-chained audit trail (action evidence.pack), which anchors them: recompute the hash of the file you hold and compare it with that record.")
	var buf bytes.Buffer
	if err := pdf.Output(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const lineH = 4.6

func (w *pdfWriter) heading(s string) {
	pdf := w.pdf
	if pdf.GetY() > 250 {
		pdf.AddPage()
	}
	pdf.Ln(3)
	pdf.SetFont("Helvetica", "B", 13)
	pdf.SetTextColor(20, 24, 30)
	pdf.MultiCell(0, 7, w.text(s), "B", "L", false)
	pdf.Ln(2)
}

// para writes a paragraph at size pt in grey level (0 black).
func (w *pdfWriter) para(size float64, grey int, s string) {
	w.pdf.SetFont("Helvetica", "", size)
	w.pdf.SetTextColor(grey, grey, grey)
	w.pdf.MultiCell(0, size*0.5, w.text(s), "", "L", false)
	w.pdf.Ln(1)
}

// fact writes "label: value".
func (w *pdfWriter) fact(label, value string) {
	pdf := w.pdf
	pdf.SetFont("Helvetica", "B", 9)
	pdf.SetTextColor(87, 96, 106)
	pdf.CellFormat(38, lineH, w.text(label), "", 0, "L", false, 0, "")
	pdf.SetFont("Helvetica", "", 9)
	pdf.SetTextColor(20, 24, 30)
	pdf.MultiCell(0, lineH, w.text(value), "", "L", false)
}

// badge writes a coloured status word.
func (w *pdfWriter) badge(status string) {
	pdf := w.pdf
	switch status {
	case Pass:
		pdf.SetFillColor(230, 244, 234)
		pdf.SetTextColor(26, 107, 52)
	case Fail:
		pdf.SetFillColor(253, 236, 234)
		pdf.SetTextColor(161, 38, 27)
	default:
		pdf.SetFillColor(255, 244, 224)
		pdf.SetTextColor(138, 83, 0)
	}
	pdf.SetFont("Helvetica", "B", 8)
	pdf.CellFormat(pdf.GetStringWidth(strings.ToUpper(status))+4, lineH, strings.ToUpper(status), "", 0, "C", true, 0, "")
	pdf.SetTextColor(20, 24, 30)
}

// link writes "open in the portal" linking to path, then ends the line.
func (w *pdfWriter) link(path string) {
	if path == "" {
		w.pdf.Ln(lineH)
		return
	}
	w.pdf.SetFont("Helvetica", "U", 8)
	w.pdf.SetTextColor(9, 105, 218)
	w.pdf.WriteLinkString(lineH, "open in the portal", w.p.URL(path))
	w.pdf.SetTextColor(20, 24, 30)
	w.pdf.Ln(lineH)
}

func (w *pdfWriter) cover() {
	p, pdf := w.p, w.pdf
	if p.Sandbox != "" {
		pdf.SetFillColor(61, 44, 0)
		pdf.SetTextColor(255, 231, 163)
		pdf.SetFont("Helvetica", "", 8)
		pdf.MultiCell(0, 5, w.text(p.Sandbox), "", "L", true)
		pdf.Ln(2)
	}
	pdf.SetFont("Helvetica", "B", 17)
	pdf.SetTextColor(20, 24, 30)
	pdf.MultiCell(0, 8, w.text(fmt.Sprintf("Evidence pack: %s (%s), %s", p.JurisdictionName, strings.ToUpper(p.Jurisdiction), p.Period.String())), "", "L", false)
	pdf.Ln(2)
	w.fact("Regime", p.Regime)
	w.fact("Reporting period", stamp(p.Period.From)+" to "+stamp(p.Period.To)+" (the end excluded)")
	w.fact("Generated", stamp(p.GeneratedAt)+" by "+p.GeneratedBy+", "+originText(p.Origin))
	w.fact("Portal", p.URL("/"))
	pass, fail, unknown := p.Counts()
	w.fact("Result", fmt.Sprintf("%d pass, %d fail, %d unknown of %d controls", pass, fail, unknown, len(p.Controls)))
	w.fact("Change record", fmt.Sprintf("%d runs in prod", len(p.Changes)))
	w.fact("Also inside", fmt.Sprintf("%d exceptions in force, %d drift findings, %d sensitive events (%d by the portal's own deploys), %d staff, %d log validations",
		len(p.Exceptions), len(p.Drift), len(p.Sensitive), p.PortalSensitive(), len(p.Staff), len(p.Logs)))
	pdf.Ln(2)
	w.para(8, 90, "Live controls were read from AWS when the pack was generated; records (runs, exceptions, drift, events, validations) are those of the reporting period. Each evidence line names the resource, the finding and the time, and links to the portal page that shows it.")
}

func (w *pdfWriter) controls() {
	pdf := w.pdf
	w.heading("1. Controls")
	for _, c := range w.p.Controls {
		if pdf.GetY() > 262 {
			pdf.AddPage()
		}
		w.badge(c.Status)
		pdf.SetFont("Helvetica", "B", 10)
		title := " " + c.Name
		if c.Stack != "" {
			title += " (" + c.Stack + ")"
		}
		pdf.MultiCell(0, lineH+0.4, w.text(title), "", "L", false)
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(87, 96, 106)
		pdf.MultiCell(0, lineH-0.6, w.text(c.Area+" · "+c.Citation), "", "L", false)
		for _, l := range c.Lines {
			pdf.SetX(20)
			pdf.SetFont("Helvetica", "", 8)
			if l.Failing {
				pdf.SetTextColor(161, 38, 27)
			} else {
				pdf.SetTextColor(20, 24, 30)
			}
			pdf.MultiCell(0, lineH-0.4, w.text("- "+l.Resource+": "+l.Finding), "", "L", false)
			pdf.SetX(23)
			pdf.SetFont("Helvetica", "", 7.5)
			pdf.SetTextColor(87, 96, 106)
			pdf.Write(lineH-0.4, w.text(stamp(l.At)+"  "))
			w.link(l.Link)
		}
		pdf.Ln(2)
	}
}

// record writes one record: a bold first line and key facts.
func (w *pdfWriter) record(title, link string, facts ...[2]string) {
	pdf := w.pdf
	if pdf.GetY() > 255 {
		pdf.AddPage()
	}
	pdf.SetFont("Helvetica", "B", 9.5)
	pdf.SetTextColor(20, 24, 30)
	pdf.Write(lineH+0.4, w.text(title+"  "))
	w.link(link)
	for _, f := range facts {
		if f[1] == "" {
			continue
		}
		pdf.SetX(20)
		pdf.SetFont("Helvetica", "B", 8)
		pdf.SetTextColor(87, 96, 106)
		pdf.CellFormat(30, lineH-0.6, w.text(f[0]), "", 0, "L", false, 0, "")
		pdf.SetFont("Helvetica", "", 8)
		pdf.SetTextColor(20, 24, 30)
		pdf.MultiCell(0, lineH-0.6, w.text(f[1]), "", "L", false)
	}
	pdf.Ln(1.5)
}

func (w *pdfWriter) changes() {
	w.heading("2. Change record of prod")
	if len(w.p.Changes) == 0 {
		w.para(9, 20, "No run in prod during the period.")
		return
	}
	for _, ch := range w.p.Changes {
		v := "none"
		if ch.VerificationID != 0 {
			v = fmt.Sprintf("#%d %s: %s", ch.VerificationID, ch.VerificationState, ch.VerificationSummary)
		}
		w.record(fmt.Sprintf("Run #%d: %s %s, %s", ch.RunID, ch.Kind, ch.Stack, ch.State), fmt.Sprintf("/runs/%d", ch.RunID),
			[2]string{"Plan", fmt.Sprintf("#%d, hash %s", ch.PlanID, ch.PlanHash)},
			[2]string{"Blueprint version", ch.BlueprintVersion},
			[2]string{"Author", ch.Author},
			[2]string{"Approved by", orDash(strings.Join(ch.Approvers, "; "))},
			[2]string{"When", "queued " + stamp(ch.CreatedAt) + ", finished " + stamp(ch.FinishedAt)},
			[2]string{"Verification", v},
			[2]string{"Error", ch.Error})
	}
}

func (w *pdfWriter) exceptions() {
	w.heading("3. Guardrail exceptions in force")
	if len(w.p.Exceptions) == 0 {
		w.para(9, 20, "No guardrail exception was in force for these stacks during the period.")
		return
	}
	for _, e := range w.p.Exceptions {
		ends := "expires " + day(e.Expires)
		if !e.RevokedAt.IsZero() {
			ends += ", revoked " + stamp(e.RevokedAt)
		}
		w.record(fmt.Sprintf("Exception #%d: %s on %s %s", e.ID, e.Rule, e.Stack, orDash(e.Resource)), "/blueprints/exceptions?all=1",
			[2]string{"Owner", e.Owner}, [2]string{"Reason", e.Reason},
			[2]string{"Recorded", stamp(e.CreatedAt) + " by " + e.CreatedBy}, [2]string{"Ends", ends})
	}
}

func (w *pdfWriter) drift() {
	w.heading("4. Drift found and reconciled")
	if len(w.p.Drift) == 0 {
		w.para(9, 20, "No drift check of these stacks found drift during the period.")
		return
	}
	for _, d := range w.p.Drift {
		rec := "not reconciled in the period"
		if d.ReconciledBy != 0 {
			rec = fmt.Sprintf("run #%d, %s", d.ReconciledBy, stamp(d.ReconciledAt))
		}
		w.record(fmt.Sprintf("Drift check #%d of %s: %d resources drifted", d.ID, d.Stack, d.Resources), fmt.Sprintf("/drift/%d", d.ID),
			[2]string{"Found", stamp(d.CheckedAt)}, [2]string{"Reconciled by", rec}, [2]string{"Clean again", stamp(d.CleanAt)})
	}
}

func (w *pdfWriter) sensitive() {
	p := w.p
	w.heading("5. Sensitive AWS events")
	w.para(9, 20, fmt.Sprintf("%d sensitive events in %s's regions and of account-wide services (IAM, sign-in) during the period: %d by people, %d by the portal's own deploys (its deployer role session).",
		len(p.Sensitive), p.JurisdictionName, len(p.Sensitive)-p.PortalSensitive(), p.PortalSensitive()))
	for _, e := range p.Sensitive {
		who := e.Who
		if e.Portal {
			who += " (the portal's deploy)"
		}
		where := e.Account + " " + e.Region
		if e.Global {
			where += " (account-wide)"
		}
		w.record(stamp(e.At)+": "+e.Why, fmt.Sprintf("/activity/events/%d", e.Seq),
			[2]string{"Event", e.Event}, [2]string{"Who", who}, [2]string{"Where", where}, [2]string{"Resources", strings.Join(e.Resources, ", ")})
	}
}

func (w *pdfWriter) staff() {
	w.heading("6. Staff and their second factor")
	for _, s := range w.p.Staff {
		f := "none"
		if s.TwoFactor {
			f = "TOTP"
		}
		req := "not required for their roles"
		if s.Required {
			req = "required"
		}
		w.record(s.Name+" ("+s.Email+")", fmt.Sprintf("/access/staff/%d", s.ID),
			[2]string{"Roles", orDash(strings.Join(s.Roles, ", "))}, [2]string{"Second factor", f + ", " + req},
			[2]string{"Account", yesNo(s.Disabled, "disabled", "active")})
	}
}

func (w *pdfWriter) integrity() {
	p := w.p
	w.heading("7. Audit chain and log integrity")
	switch {
	case p.Chain.Err != "":
		w.para(9, 20, "The portal's audit chain could not be verified: "+p.Chain.Err)
	case p.Chain.OK:
		w.para(9, 20, fmt.Sprintf("The portal's audit chain verified when the pack was made: %d records, %d of them written in the period; head record #%d, hash %s.",
			p.Chain.Checked, p.Chain.InPeriod, p.Chain.HeadSeq, p.Chain.HeadHash))
	default:
		w.para(9, 20, fmt.Sprintf("The audit chain breaks at record #%d: %s", p.Chain.FirstBroken, p.Chain.Reason))
	}
	if len(p.Logs) == 0 {
		w.para(9, 20, "No CloudTrail log validation ran during the period.")
	}
	for _, v := range p.Logs {
		w.record(fmt.Sprintf("Validation #%d: %s", v.ID, yesNo(v.OK, "valid", "problems found")), fmt.Sprintf("/activity/integrity/%d", v.ID),
			[2]string{"Finished", stamp(v.FinishedAt)}, [2]string{"Checked", fmt.Sprintf("%d digests, %d log files", v.Digests, v.LogFiles)},
			[2]string{"Problems", strings.Join(v.Problems, "; ")})
	}
}
