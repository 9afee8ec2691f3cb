// Attention maps: render, write with libpng, decode the file with libpng and check its pixels against the
// probabilities; the per-head summaries against hand-made heads whose numbers are known exactly.
#include "catch.hpp"
#include "support.hpp"

#include <vkattn/attention.hpp>
#include <vkattn/attention_map.hpp>
#include <vkattn/error.hpp>
#include <vkattn/reference.hpp>
#include <vkattn/tensor.hpp>

#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace viz = vkattn::viz;
using vkattn::test::error_message;
using vkattn::test::TempDir;

namespace {

using Rgb = std::array<uint8_t, 3>;

viz::Image read_png(const std::filesystem::path& path) {
    png_image png;
    std::memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    REQUIRE(png_image_begin_read_from_file(&png, path.c_str()) != 0);
    png.format = PNG_FORMAT_RGB;
    viz::Image image;
    image.width = int(png.width);
    image.height = int(png.height);
    image.rgb.resize(PNG_IMAGE_SIZE(png));
    REQUIRE(png_image_finish_read(&png, nullptr, image.rgb.data(), 0, nullptr) != 0);
    return image;
}

Rgb pixel(const viz::Image& im, int x, int y) {
    REQUIRE(x >= 0);
    REQUIRE(y >= 0);
    REQUIRE(x < im.width);
    REQUIRE(y < im.height);
    const uint8_t* p = &im.rgb[(size_t(y) * size_t(im.width) + size_t(x)) * 3];
    return {p[0], p[1], p[2]};
}

// Colour -> level 0..255 of the colour map (the map's 256 colours are distinct, checked below).
const std::map<Rgb, int>& levels() {
    static const std::map<Rgb, int> table = [] {
        std::map<Rgb, int> t;
        for (int k = 0; k < 256; ++k) t[viz::colormap(float(k) / 255.0f)] = k;
        return t;
    }();
    return table;
}

// The probability a cell's colour stands for, or -1 for the background (a masked cell).
double decode(const viz::Image& im, int x, int y, float vmax) {
    const Rgb c = pixel(im, x, y);
    if (c == viz::kBackground) return -1;
    const auto it = levels().find(c);
    INFO("pixel " << x << "," << y << " = " << int(c[0]) << "," << int(c[1]) << "," << int(c[2]));
    REQUIRE(it != levels().end());
    return it->second / 255.0 * vmax;
}

// Causal attention probabilities [H, L, L] of seeded random Q and K, from the CPU reference.
std::vector<float> causal_probs(int H, int L, uint64_t seed) {
    const int D = 32;
    const auto q = vkattn::test::random_values(size_t(H) * L * D, seed, -2, 2);
    const auto k = vkattn::test::random_values(size_t(H) * L * D, seed + 1, -2, 2);
    vkattn::reference::AttentionOptions o;
    o.causal = true;
    return vkattn::reference::attention_probs({1, H, H, L, L, D}, q, k, o);
}

bool is_ink(const viz::Image& im, int x, int y) { return pixel(im, x, y) == viz::kInk; }

// Whether any pixel of the rectangle is ink.
bool any_ink(const viz::Image& im, int x0, int y0, int x1, int y1) {
    for (int y = std::max(y0, 0); y < std::min(y1, im.height); ++y)
        for (int x = std::max(x0, 0); x < std::min(x1, im.width); ++x)
            if (is_ink(im, x, y)) return true;
    return false;
}

}  // namespace

TEST_CASE("viridis: 256 distinct colours, dark to light, matplotlib's end and middle points", "[cpu][viz]") {
    std::set<Rgb> seen;
    double last_luma = -1;
    for (int k = 0; k < 256; ++k) {
        const Rgb c = viz::colormap(float(k) / 255.0f);
        REQUIRE(c != viz::kBackground);
        REQUIRE(seen.insert(c).second);
        // Relative luminance rises with the level: a perceptually uniform map reads in greyscale too. 8-bit
        // rounding of each channel may cost 0.5 of a level.
        const double luma = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
        REQUIRE(luma > last_luma - 0.5);
        last_luma = std::max(last_luma, luma);
    }
    // matplotlib's viridis at 0, 0.5 and 1 is #440154, #21918c, #fde725; the polynomial fit stays within about
    // 1% of the table, 3 levels of 255, plus 1 for rounding.
    const std::pair<float, Rgb> refs[] = {
        {0.0f, {0x44, 0x01, 0x54}}, {0.5f, {0x21, 0x91, 0x8c}}, {1.0f, {0xfd, 0xe7, 0x25}}};
    for (const auto& [t, want] : refs) {
        const Rgb got = viz::colormap(t);
        for (int c = 0; c < 3; ++c) {
            INFO("t = " << t << ", channel " << c << ": got " << int(got[size_t(c)]) << ", want "
                        << int(want[size_t(c)]));
            REQUIRE(std::abs(int(got[size_t(c)]) - int(want[size_t(c)])) <= 4);
        }
    }
    REQUIRE(viz::colormap(-1.0f) == viz::colormap(0.0f));
    REQUIRE(viz::colormap(2.0f) == viz::colormap(1.0f));
}

TEST_CASE("a causal map decodes back to its probabilities; the upper triangle is empty", "[cpu][viz]") {
    const int L = 17;
    const auto p = causal_probs(1, L, 1701);
    std::vector<std::string> tokens;
    for (int i = 0; i < L; ++i) tokens.push_back("tok" + std::to_string(i));
    viz::MapOptions o;
    o.title = "causal, 17 tokens";
    o.query_tokens = tokens;
    viz::MapLayout layout;
    const viz::Image rendered = viz::render_attention_map({p, 1, L, L}, o, &layout);
    TempDir dir("viz");
    viz::write_png(dir / "map.png", rendered);
    const viz::Image im = read_png(dir / "map.png");
    REQUIRE(im.width == rendered.width);
    REQUIRE(im.height == rendered.height);
    REQUIRE(im.rgb == rendered.rgb);

    REQUIRE(layout.panels.size() == 1);
    const auto& panel = layout.panels[0];
    // Row 0 sees only key 0, so the largest probability, and the brightest colour, is 1.
    REQUIRE(layout.vmax == 1.0f);
    const float vmax = layout.vmax;
    // Each cell is one of 256 levels: it decodes to p within half a level, vmax / 510; a row of n visible keys
    // sums to 1 within n · vmax / 510.
    const double per_cell = vmax / 510.0 + 1e-6;
    for (int i = 0; i < L; ++i) {
        double sum = 0;
        for (int j = 0; j < L; ++j) {
            const int x0 = panel.x + j * layout.cell, y0 = panel.y + i * layout.cell;
            const double got = decode(im, x0 + layout.cell / 2, y0 + layout.cell / 2, vmax);
            // Every pixel of a cell has the cell's colour.
            REQUIRE(pixel(im, x0, y0) == pixel(im, x0 + layout.cell - 1, y0 + layout.cell - 1));
            if (j > i) {
                INFO("query " << i << ", key " << j);
                REQUIRE(got == -1);  // masked: background
                continue;
            }
            const double want = p[size_t(i) * L + size_t(j)];
            INFO("query " << i << ", key " << j << ": decoded " << got << ", probability " << want);
            REQUIRE(std::abs(got - want) <= per_cell);
            sum += got;
        }
        INFO("row " << i << " sums to " << sum);
        REQUIRE(std::abs(sum - 1.0) <= (i + 1) * per_cell);
    }
    // The colour bar runs from colormap(1) at its top to colormap(0) at its bottom.
    REQUIRE(pixel(im, layout.colorbar_x, layout.colorbar_y) == viz::colormap(1.0f));
    REQUIRE(pixel(im, layout.colorbar_x, layout.colorbar_y + layout.colorbar_height - 1) == viz::colormap(0.0f));
    // Every token has its label: ink left of each row and above each column.
    for (int i = 0; i < L; ++i) {
        const int centre = panel.y + i * layout.cell + layout.cell / 2;
        REQUIRE(any_ink(im, 0, centre - 3, panel.x - 1, centre + 4));
        const int centre_x = panel.x + i * layout.cell + layout.cell / 2;
        REQUIRE(any_ink(im, centre_x - 3, 0, centre_x + 4, panel.y - 1));
    }
}

TEST_CASE("map sizes from 4 to 1,024 tokens: big cells when short, 1 px when long, labels thinned", "[cpu][viz]") {
    const int L = GENERATE(4, 17, 1024);
    const auto p = causal_probs(1, L, 4000 + uint64_t(L));
    viz::MapLayout layout;
    TempDir dir("viz");
    viz::write_png(dir / "map.png", viz::render_attention_map({p, 1, L, L}, {}, &layout));
    const viz::Image im = read_png(dir / "map.png");
    INFO(L << " tokens: " << im.width << " x " << im.height << ", cell " << layout.cell);
    const int cell = std::clamp(768 / L, 1, 48);  // as documented
    REQUIRE(layout.cell == cell);
    REQUIRE(layout.cell == (L == 4 ? 48 : L == 17 ? 45 : 1));
    REQUIRE(im.width == layout.width);
    REQUIRE(im.height == layout.height);
    const auto& panel = layout.panels[0];
    REQUIRE(panel.width == L * cell);
    REQUIRE(panel.height == L * cell);
    // Labels, title and colour bar take a bounded margin: at most 160 px besides the cells (positions have up
    // to 4 digits).
    REQUIRE(im.width <= panel.width + 160);
    REQUIRE(im.height <= std::max(panel.height, 512) + 160);
    // Labels 5x7 at scale 2 need 16 px per row: every token when cells are that big, else every 1, 2, 5, 10, 20..
    const int step = layout.query_label_step;
    REQUIRE(step * cell >= 16);
    REQUIRE((step == 1 || (step / 2) * cell < 16 || (step * 2 / 5) * cell < 16));
    REQUIRE(step == (L == 1024 ? 20 : 1));
    REQUIRE(layout.key_label_step == step);
    // Where a label should be there is ink in the left margin; between thinned labels there is none.
    for (int i = 0; i < L; ++i) {
        const int centre = panel.y + i * cell + cell / 2;
        if (i % step == 0) {
            INFO("query label " << i);
            REQUIRE(any_ink(im, 0, centre - 3, panel.x - 1, centre + 4));
            const int cx = panel.x + i * cell + cell / 2;
            REQUIRE(any_ink(im, cx - 3, 0, cx + 4, panel.y - 1));
        } else if (i % step >= 8 && step - i % step >= 8) {  // clear of the 14-px-tall glyphs centred on labels
            INFO("between labels at query " << i);
            REQUIRE_FALSE(any_ink(im, 0, centre, panel.x - 1, centre + 1));
        }
    }
    // Upper triangle empty at every size.
    REQUIRE(pixel(im, panel.x + (L - 1) * cell, panel.y) == viz::kBackground);
    REQUIRE(pixel(im, panel.x, panel.y) == viz::colormap(1.0f));
}

TEST_CASE("a grid of 12 heads: 4 columns, 3 rows, head h at row h / 4, column h % 4", "[cpu][viz]") {
    const int H = 12, L = 8;
    // Head h puts all of every row on key h % L, so each panel shows which head it is.
    std::vector<float> p(size_t(H) * L * L, 0.0f);
    for (int h = 0; h < H; ++h)
        for (int i = 0; i < L; ++i) p[(size_t(h) * L + size_t(i)) * L + size_t(h % L)] = 1.0f;
    viz::MapLayout layout;
    TempDir dir("viz");
    viz::write_png(dir / "grid.png", viz::render_attention_map({p, H, L, L}, {}, &layout));
    const viz::Image im = read_png(dir / "grid.png");
    REQUIRE(layout.columns == 4);
    REQUIRE(layout.rows == 3);
    REQUIRE(layout.cell == std::clamp(384 / L, 1, 48));
    REQUIRE(layout.panels.size() == size_t(H));
    const int pitch_x = layout.panels[1].x - layout.panels[0].x, pitch_y = layout.panels[4].y - layout.panels[0].y;
    REQUIRE(pitch_x > L * layout.cell);
    REQUIRE(pitch_y > L * layout.cell);
    for (int h = 0; h < H; ++h) {
        const auto& panel = layout.panels[size_t(h)];
        INFO("head " << h);
        REQUIRE(panel.head == h);
        REQUIRE(panel.x == layout.panels[0].x + (h % 4) * pitch_x);
        REQUIRE(panel.y == layout.panels[0].y + (h / 4) * pitch_y);
        for (int i = 0; i < L; ++i)
            for (int j = 0; j < L; ++j) {
                const Rgb c = pixel(im, panel.x + j * layout.cell + 1, panel.y + i * layout.cell + 1);
                REQUIRE(c == (j == h % L ? viz::colormap(1.0f) : viz::kBackground));
            }
    }
    // One colour bar right of the last column.
    REQUIRE(layout.colorbar_x > layout.panels[3].x + L * layout.cell);
    REQUIRE(layout.colorbar_x + layout.colorbar_width <= im.width);
}

TEST_CASE("one head of many, chosen by MapOptions::head", "[cpu][viz]") {
    const auto p = causal_probs(3, 6, 77);
    viz::MapOptions o;
    o.head = 2;
    viz::MapLayout layout;
    const viz::Image im = viz::render_attention_map({p, 3, 6, 6}, o, &layout);
    REQUIRE(layout.panels.size() == 1);
    REQUIRE(layout.panels[0].head == 2);
    // vmax is the largest probability of the head drawn (1, at query 0).
    const auto& panel = layout.panels[0];
    const double got = decode(im, panel.x + layout.cell / 2, panel.y + 5 * layout.cell + layout.cell / 2, layout.vmax);
    REQUIRE(std::abs(got - p[size_t(2) * 36 + 5 * 6]) <= layout.vmax / 510.0 + 1e-6);
}

TEST_CASE("layers x heads thumbnails: max-pooled so a diagonal survives 300 tokens", "[cpu][viz]") {
    const int layers_n = 2, H = 3, L = 300;
    std::vector<float> eye(size_t(H) * L * L, 0.0f);
    for (int h = 0; h < H; ++h)
        for (int i = 0; i < L; ++i) eye[(size_t(h) * L + size_t(i)) * L + size_t(i)] = 1.0f;
    const std::vector<viz::AttentionProbs> layers(layers_n, viz::AttentionProbs{eye, H, L, L});
    viz::ThumbnailLayout t;
    TempDir dir("viz");
    viz::write_png(dir / "thumbs.png", viz::render_attention_thumbnails(layers, {}, &t));
    const viz::Image im = read_png(dir / "thumbs.png");
    REQUIRE(t.pool == 3);  // ceil(300 / 128)
    REQUIRE(t.thumb_width == 100);
    REQUIRE(t.thumb_height == 100);
    for (int l = 0; l < layers_n; ++l)
        for (int h = 0; h < H; ++h) {
            const int x = t.x0 + h * t.pitch_x, y = t.y0 + l * t.pitch_y;
            for (int r = 0; r < 100; ++r) {
                REQUIRE(pixel(im, x + r, y + r) == viz::colormap(1.0f));
                if (r >= 1) REQUIRE(pixel(im, x + r - 1, y + r) == viz::kBackground);
            }
        }
    // Layer names left of the rows, head names above the columns.
    REQUIRE(any_ink(im, 0, t.y0, t.x0 - 1, t.y0 + 100));
    REQUIRE(any_ink(im, t.x0, 0, t.x0 + 100, t.y0 - 1));
}

TEST_CASE("bad maps are one-line vkattn::Errors", "[cpu][viz]") {
    std::vector<float> p(16, 0.25f);
    auto one_line = [](const std::string& m) {
        INFO(m);
        REQUIRE(m.find('\n') == std::string::npos);
        return m;
    };
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::render_attention_map({{}, 0, 4, 4}); })), "at least one");
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::render_attention_map({p, 2, 4, 4}); })), "got 16");
    p[5] = NAN;
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::render_attention_map({p, 1, 4, 4}); })),
                            "NaN at head 0, query 1, key 1");
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::summarize_heads({p, 1, 4, 4}); })), "NaN");
    p[5] = -0.5f;
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::render_attention_map({p, 1, 4, 4}); })), "[0, 1]");
    p[5] = 0.25f;
    viz::MapOptions o;
    o.head = 1;
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::render_attention_map({p, 1, 4, 4}, o); })),
                            "head 1 does not exist");
    o = {};
    o.query_tokens = {"a", "b"};
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::render_attention_map({p, 1, 4, 4}, o); })),
                            "expected 4 query tokens");
    std::vector<float> big(size_t(2048) * 2048, 0.0f);  // 1 head of 2048 tokens is fine ...
    o = {};
    o.cell = 8;  // ... but not at 8 px per token: 16384² pixels
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::render_attention_map({big, 1, 2048, 2048}, o); })),
                            "100 megapixels");
    TempDir dir("viz");
    const viz::Image im = viz::render_attention_map({p, 1, 4, 4});
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::write_png(dir / "no-such-dir" / "m.png", im); })),
                            "cannot write");
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::write_png(dir.path(), im); })), "cannot write");
    VKATTN_REQUIRE_CONTAINS(one_line(error_message([&] { viz::write_png(dir / "e.png", viz::Image{}); })), "non-empty");
}

TEST_CASE("head summaries single out previous-token, first-token and uniform heads", "[cpu][viz]") {
    const int L = 10, H = 3;
    std::vector<float> p(size_t(H) * L * L, 0.0f);
    auto at = [&](int h, int i, int j) -> float& { return p[(size_t(h) * L + size_t(i)) * L + size_t(j)]; };
    for (int i = 0; i < L; ++i) {
        at(0, i, std::max(i - 1, 0)) = 1.0f;                         // previous token (row 0 can only see itself)
        at(1, i, 0) = 1.0f;                                          // first token
        for (int j = 0; j <= i; ++j) at(2, i, j) = 1.0f / float(i + 1);  // uniform over what it sees
    }
    const auto s = viz::summarize_heads({p, H, L, L});
    REQUIRE(s.size() == 3);
    // Rows 1..9 have a previous token; in row 1 the previous token is also the first.
    REQUIRE(s[0].previous_token == Approx(1.0));
    REQUIRE(s[0].first_token == Approx(1.0 / 9));
    REQUIRE(s[0].mean_distance == Approx(9.0 / 10));
    REQUIRE(s[0].entropy == Approx(0.0).margin(1e-12));
    REQUIRE(s[1].previous_token == Approx(1.0 / 9));
    REQUIRE(s[1].first_token == Approx(1.0));
    REQUIRE(s[1].mean_distance == Approx(4.5));  // mean of i over 0..9
    double prev = 0, entropy = 0, distance = 0;
    for (int i = 0; i < L; ++i) {
        if (i >= 1) prev += 1.0 / (i + 1);
        entropy += std::log(double(i + 1));
        distance += i / 2.0;  // mean of i - j over j = 0..i
    }
    REQUIRE(s[2].previous_token == Approx(prev / 9).epsilon(1e-6));
    REQUIRE(s[2].first_token == Approx(prev / 9).epsilon(1e-6));
    REQUIRE(s[2].entropy == Approx(entropy / L).epsilon(1e-6));
    REQUIRE(s[2].mean_distance == Approx(distance / L).epsilon(1e-6));

    // One query at the end of 5 keys (decode, Lq < Lk): it sits at position 4, its previous token is key 3.
    const std::vector<float> decode_row = {0.1f, 0.1f, 0.1f, 0.6f, 0.1f};
    const auto d = viz::summarize_heads({decode_row, 1, 1, 5});
    REQUIRE(d[0].previous_token == Approx(0.6));
    REQUIRE(d[0].first_token == Approx(0.1));
    REQUIRE(d[0].mean_distance == Approx(0.4 + 0.3 + 0.2 + 0.6));
    // A single query at position 0 has no previous token: NaN, not 0.
    const std::vector<float> alone = {1.0f};
    const auto a = viz::summarize_heads({alone, 1, 1, 1});
    REQUIRE(std::isnan(a[0].previous_token));
    REQUIRE(a[0].mean_distance == 0.0);
    // Fully masked rows are skipped, not counted as attending nowhere.
    std::vector<float> masked = {0, 0, 0, 0.5f, 0.5f, 0, 0, 0, 1.0f};  // [3, 3], row 0 masked entirely
    const auto m = viz::summarize_heads({masked, 1, 3, 3});
    REQUIRE(m[0].previous_token == Approx((0.5 + 0.0) / 2));  // rows 1 and 2
    REQUIRE(m[0].entropy == Approx(std::log(2.0) / 2));
}

TEST_CASE("log scale: small probabilities of long rows decode within 10^(d/510)", "[cpu][viz]") {
    const int L = 200;
    const auto p = causal_probs(1, L, 2024);
    viz::MapOptions o;
    o.log_decades = 3;
    viz::MapLayout layout;
    const viz::Image im = viz::render_attention_map({p, 1, L, L}, o, &layout);
    REQUIRE(layout.vmax == 1.0f);
    REQUIRE(layout.log_decades == 3.0f);
    const double factor = std::pow(10.0, 3.0 / 510.0) * (1 + 1e-5);  // half a level of 3 decades over 255
    int checked = 0;
    for (int i = 0; i < L; i += 7)
        for (int j = 0; j <= i; j += 3) {
            const double want = p[size_t(i) * L + size_t(j)];
            const Rgb c = pixel(im, layout.panels[0].x + j * layout.cell, layout.panels[0].y + i * layout.cell);
            REQUIRE(c != viz::kBackground);
            const int level = levels().at(c);
            if (want <= 1e-3) {  // at or below the floor: level 0 (or 1 by rounding at the floor)
                REQUIRE(level <= 1);
                continue;
            }
            const double got = std::pow(10.0, 3.0 * (level / 255.0 - 1.0));
            INFO("query " << i << ", key " << j << ": decoded " << got << ", probability " << want);
            REQUIRE(got <= want * factor);
            REQUIRE(got >= want / factor);
            ++checked;
        }
    REQUIRE(checked > 100);
    viz::MapOptions bad;
    bad.log_decades = -1;
    VKATTN_REQUIRE_CONTAINS(error_message([&] { viz::render_attention_map({p, 1, L, L}, bad); }), "decades");
}

TEST_CASE("reference::attention_probs: the weights reference::attention applies to V", "[cpu][viz]") {
    const vkattn::reference::AttentionShape s{2, 4, 2, 5, 9, 32};  // GQA, Lq < Lk
    const auto q = vkattn::test::random_values(size_t(s.B) * s.H * s.Lq * s.D, 11, -2, 2);
    const auto k = vkattn::test::random_values(size_t(s.B) * s.Hkv * s.Lk * s.D, 12, -2, 2);
    const auto v = vkattn::test::random_values(size_t(s.B) * s.Hkv * s.Lk * s.D, 13);
    vkattn::reference::AttentionOptions o;
    o.causal = true;
    const auto p = vkattn::reference::attention_probs(s, q, k, o);
    const auto out = vkattn::reference::attention(s, q, k, v, o);
    REQUIRE(p.size() == size_t(s.B) * s.H * s.Lq * s.Lk);
    for (int b = 0; b < s.B; ++b)
        for (int h = 0; h < s.H; ++h)
            for (int i = 0; i < s.Lq; ++i) {
                const float* row = &p[((size_t(b) * s.H + size_t(h)) * s.Lq + size_t(i)) * s.Lk];
                double sum = 0;
                for (int j = 0; j < s.Lk; ++j) {
                    if (j > i + s.Lk - s.Lq) REQUIRE(row[j] == 0.0f);  // causal, bottom-right aligned
                    sum += row[j];
                }
                REQUIRE(sum == Approx(1.0).epsilon(1e-6));
                // probs · V reproduces the output (both from the same double-precision math; fp32 storage).
                const int hk = h / (s.H / s.Hkv);
                for (int d = 0; d < s.D; ++d) {
                    double acc = 0;
                    const float* vs = &v[(size_t(b) * s.Hkv + size_t(hk)) * s.Lk * s.D + size_t(d)];
                    for (int j = 0; j < s.Lk; ++j) acc += row[j] * vs[size_t(j) * s.D];
                    const float o_want = out[((size_t(b) * s.H + size_t(h)) * s.Lq + size_t(i)) * s.D + size_t(d)];
                    REQUIRE(std::abs(acc - o_want) <= 1e-5);
                }
            }
    VKATTN_REQUIRE_CONTAINS(error_message([&] { vkattn::reference::attention_probs(s, q, {}, o); }), "attention_probs");
}

TEST_CASE("attention_scores + attention_softmax on the GPU match reference::attention_probs", "[gpu][viz]") {
    auto& ctx = vkattn::test::gpu();
    const vkattn::reference::AttentionShape s{1, 3, 3, 17, 17, 64};
    const auto q = vkattn::test::random_values(size_t(s.H) * s.Lq * s.D, 21, -2, 2);
    const auto k = vkattn::test::random_values(size_t(s.H) * s.Lk * s.D, 22, -2, 2);
    vkattn::reference::AttentionOptions o;
    o.causal = true;
    const auto want = vkattn::reference::attention_probs(s, q, k, o);
    vkattn::Tensor tq(ctx, {s.B, s.H, s.Lq, s.D}, q), tk(ctx, {s.B, s.H, s.Lk, s.D}, k);
    vkattn::Tensor scores(ctx, {s.B, s.H, s.Lq, s.Lk});
    vkattn::AttentionParams params;
    params.causal = true;
    vkattn::attention_scores(ctx, tq, tk, scores, params);
    vkattn::attention_softmax(ctx, scores, scores, params);
    const auto got = scores.download();
    // fp32 exp and a 17-term sum against double: a few ulp of 1.
    const auto c = vkattn::test::compare(got, want, 1e-6, 1e-5);
    INFO(c.describe());
    REQUIRE(c.ok);
    // And the map drawn from them has an empty upper triangle.
    viz::MapLayout layout;
    const viz::Image im = viz::render_attention_map({got, s.H, s.Lq, s.Lk}, {}, &layout);
    for (const auto& panel : layout.panels)
        for (int i = 0; i < s.Lq; ++i)
            for (int j = 0; j < s.Lk; ++j) {
                const bool empty = pixel(im, panel.x + j * layout.cell, panel.y + i * layout.cell) == viz::kBackground;
                REQUIRE(empty == (j > i));
            }
}

TEST_CASE("query rows are labelled with their positions i + Lk - Lq", "[cpu][viz]") {
    // Two queries at the end of 1,000 keys are positions 998 and 999: three digits of label, where two queries
    // over two keys need one. Scale 2 glyphs advance 12 px, so the cells move right by 24 px.
    std::vector<float> decode(size_t(2) * 1000, 0.001f), square = {1.0f, 0.0f, 0.5f, 0.5f};
    viz::MapOptions o;
    o.cell = 1;
    viz::MapLayout a, b;
    viz::render_attention_map({decode, 1, 2, 1000}, o, &a);
    viz::render_attention_map({square, 1, 2, 2}, o, &b);
    REQUIRE(a.panels[0].x - b.panels[0].x == 24);
}

TEST_CASE("narrow panels are as wide as their name, 'head 11'", "[cpu][viz]") {
    const int H = 12, L = 2;
    std::vector<float> p(size_t(H) * L * L, 0.5f);
    viz::MapOptions o;
    o.cell = 2;
    viz::MapLayout layout;
    viz::render_attention_map({p, H, L, L}, o, &layout);
    // 7 glyphs of 5 px + 6 gaps of 1 px at scale 2, plus the query labels' margin left of the next panel's cells.
    REQUIRE(layout.panels[1].x - layout.panels[0].x > (7 * 6 - 1) * 2);
}
