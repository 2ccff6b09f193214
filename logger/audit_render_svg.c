/* SPDX-License-Identifier: Apache-2.0 */
/*
 * audit_render_svg.c: the HTML report's per-day chart, inline SVG (no
 * script): one column per UTC day, stacked by reason (the 8 most frequent,
 * the rest as "other") and by mode: refused (enforce) solid at the bottom,
 * report-only (would be refused, served) hatched on top; a legend below.
 * Every value from events goes through audit_buf_html.
 */
#include "audit_render.h"

#include <stdio.h>

#define S audit_rs
#define N audit_rn
#define CHART_REASONS 8 /* colours; the rest is "other" */

/* Reason colours (colour-blind friendly order); report-only segments use
 * the same colour, paler and hatched. */
static const char *const palette[CHART_REASONS + 1] = {"#4e79a7", "#f28e2b", "#e15759",
                                                       "#76b7b2", "#59a14f", "#edc948",
                                                       "#b07aa1", "#ff9da7", "#9c755f"};

/* Per-day columns stacked by reason: refused (enforce) solid at the
 * bottom, report-only (served) hatched on top. */
/* The axis top: the next 1, 2, 2.5 or 5 x 10^k at or above n, so the
 * four gridlines fall on round numbers. */
static json_int_t nice_ceil(json_int_t n)
{
    static const json_int_t steps[] = {10, 20, 25, 50, 100};
    json_int_t scale = 1;
    if (n <= 4)
        return 4;
    while (n > 100 * scale)
        scale *= 10;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (steps[i] * scale >= n)
            return steps[i] * scale;
    return 100 * scale;
}

void audit_html_days_chart(audit_buf_t *b, const json_t *pd)
{
    const json_t *days = json_object_get(pd, "days"), *reasons = json_object_get(pd, "reasons");
    size_t n = json_array_size(days), nr = json_array_size(reasons);
    size_t ncol = nr > CHART_REASONS ? CHART_REASONS + 1 : nr;
    const int w = 1100, left = 60, bottom = 40, top_pad = 12, ph = 260;
    int legend_rows = (int)((ncol + 3) / 4) + 1;
    int h = top_pad + ph + bottom + legend_rows * 18 + 8, pw = w - left - 10;
    json_int_t top = 1;
    for (size_t i = 0; i < n; i++)
        if (N(json_array_get(days, i), "total") > top)
            top = N(json_array_get(days, i), "total");
    top = nice_ceil(top);
    audit_buf_printf(
        b,
        "<svg id=\"chart-per-day\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\""
        " width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\""
        "Events per day, stacked by reason and mode\"><title>Events per day, stacked "
        "by reason and mode</title><defs>",
        w, h, w, h);
    for (size_t c = 0; c < ncol; c++)
        audit_buf_printf(
            b,
            "<pattern id=\"ro%zu\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse"
            "\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\""
            "%s\" fill-opacity=\"0.35\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" "
            "stroke=\"%s\" stroke-width=\"3\"/></pattern>",
            c, palette[c], palette[c]);
    audit_buf_str(b, "</defs>");
    /* axes and a few gridlines */
    for (int g = 0; g <= 4; g++) {
        int y = top_pad + ph - ph * g / 4;
        audit_buf_printf(
            b,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\"/>"
            "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%" JSON_INTEGER_FORMAT "</text>",
            left, y, left + pw, y, g ? "#e4e7ec" : "#889", left - 4, y + 4, top * g / 4);
    }
    if (n == 0)
        audit_buf_printf(b, "<text x=\"%d\" y=\"%d\">no events</text>", left + 10,
                         top_pad + ph / 2);
    double slot = n ? (double)pw / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *d = json_array_get(days, i), *br = json_object_get(d, "by_reason");
        double x = left + slot * (double)i + slot * 0.12, bw = slot * 0.76 > 1 ? slot * 0.76 : 1;
        double y = top_pad + ph;
        const char *modes[] = {"enforce", "report_only"};
        for (int m = 0; m < 2; m++) {
            json_int_t acc[CHART_REASONS + 1] = {0};
            const json_t *arr = json_object_get(br, modes[m]);
            for (size_t j = 0; j < nr; j++)
                acc[j < CHART_REASONS ? j : CHART_REASONS] +=
                    json_integer_value(json_array_get(arr, j));
            for (size_t c = 0; c < ncol; c++) {
                if (!acc[c])
                    continue;
                double sh = (double)ph * (double)acc[c] / (double)top;
                if (sh < 1)
                    sh = 1;
                y -= sh;
                audit_buf_printf(b,
                                 "<rect class=\"seg\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                                 "height=\"%.1f\" fill=\"",
                                 x, y, bw, sh);
                if (m)
                    audit_buf_printf(b, "url(#ro%zu)", c);
                else
                    audit_buf_str(b, palette[c]);
                audit_buf_str(b, "\"><title>");
                audit_buf_html(b, S(d, "date"));
                audit_buf_str(b, " ");
                audit_buf_html(b, c < CHART_REASONS ? json_string_value(json_array_get(reasons, c))
                                                    : "other reasons");
                audit_buf_printf(b, " (%s): %" JSON_INTEGER_FORMAT "</title></rect>",
                                 m ? "report-only, served" : "refused", acc[c]);
            }
        }
        /* a label every few days so they never overlap */
        size_t every = n > 14 ? (n + 13) / 14 : 1;
        if (i % every == 0 || i + 1 == n) {
            audit_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x + bw / 2,
                             top_pad + ph + 16);
            audit_buf_html(b, S(d, "date") ? S(d, "date") + 5 : "");
            audit_buf_str(b, "</text>");
        }
    }
    /* legend: reasons, then the two modes */
    int ly = top_pad + ph + bottom;
    for (size_t c = 0; c < ncol; c++) {
        int lx = left + (int)(c % 4) * 250, yy = ly + (int)(c / 4) * 18;
        audit_buf_printf(b,
                         "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                         "<text x=\"%d\" y=\"%d\">",
                         lx, yy, palette[c], lx + 16, yy + 10);
        audit_buf_html(b, c < CHART_REASONS ? json_string_value(json_array_get(reasons, c))
                                            : "other reasons");
        audit_buf_str(b, "</text>");
    }
    int yy = ly + (legend_rows - 1) * 18;
    audit_buf_printf(
        b,
        "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"#555\"/><text "
        "x=\"%d\" y=\"%d\">solid: refused (enforce)</text><rect x=\"%d\" y=\"%d\" "
        "width=\"12\" height=\"12\" fill=\"url(#ro0)\" stroke=\"#555\"/><text x=\"%d\" "
        "y=\"%d\">hatched: report-only (would be refused, served)</text>",
        left, yy, left + 16, yy + 10, left + 250, yy, left + 266, yy + 10);
    audit_buf_str(b, "</svg>\n");
}
