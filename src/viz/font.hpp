// The renderer's own 5x7 bitmap font (printable ASCII).
#pragma once

#include <string>
#include <string_view>

namespace vkattn::viz {

constexpr int kGlyphWidth = 5;
constexpr int kGlyphHeight = 7;
constexpr int kGlyphAdvance = 6;  // one column of space between characters
constexpr int kLineHeight = 9;    // one row of space above and below

// True when pixel (x, y) of character c's glyph is ink; characters outside 32..126 draw as '?'.
bool glyph_pixel(char c, int x, int y);

// The text with each non-ASCII character (one UTF-8 sequence) and each control character replaced by '?'.
std::string printable_ascii(std::string_view utf8);

}  // namespace vkattn::viz
