"""Self-contained HTML reports (inline SVG plots, tables, no script): shadow mode and the live audit."""
