// Viridis, the perceptually uniform colour map of Nathaniel Smith and Stéfan van der Walt (matplotlib's default
// since 2.0), from Matt Zucker's published degree-6 polynomial fit to matplotlib's 256-entry table
// (https://www.shadertoy.com/view/WlfXRN, CC0), which stays within about 1% of the table. The fit is evaluated
// once per 8-bit level, so a map holds exactly 256 colours.
#include <vkattn/attention_map.hpp>

#include <algorithm>
#include <cmath>

namespace vkattn::viz {
namespace {

// c0 + t (c1 + t (c2 + ... t c6)), one row per channel: red, green, blue.
constexpr double kViridis[3][7] = {
    {0.2777273272234177, 0.1050930431085774, -0.3308618287255563, -4.634230498983486, 6.228269936347081,
     4.776384997670288, -5.435455855934631},
    {0.005407344544966578, 1.404613529898575, 0.214847559468213, -5.799100973351585, 14.17993336680509,
     -13.74514537774601, 4.645852612178535},
    {0.3340998053353061, 1.384590162594685, 0.09509516302823659, -19.33244095627987, 56.69055260068105,
     -65.35303263337234, 26.3124352495832},
};

std::array<std::array<uint8_t, 3>, 256> make_table() {
    std::array<std::array<uint8_t, 3>, 256> table{};
    for (int level = 0; level < 256; ++level) {
        const double t = level / 255.0;
        for (int c = 0; c < 3; ++c) {
            double v = kViridis[c][6];
            for (int k = 5; k >= 0; --k) v = v * t + kViridis[c][k];
            table[size_t(level)][size_t(c)] = uint8_t(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
        }
    }
    return table;
}

}  // namespace

std::array<uint8_t, 3> colormap(float t) {
    static const auto table = make_table();
    const float clamped = std::isnan(t) ? 0.0f : std::clamp(t, 0.0f, 1.0f);
    return table[size_t(std::lround(clamped * 255.0f))];
}

}  // namespace vkattn::viz
