//! Schedule tables and SVG charts (pure string generation).
