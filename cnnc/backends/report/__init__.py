"""Reports of a checked model: the summary table (text, JSON, Markdown) and the plot
(DOT, Mermaid, SVG)."""
