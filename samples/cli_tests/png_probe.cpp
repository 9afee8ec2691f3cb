// Checks the pixels of a PNG that `vkattn inspect --json --png P --probs-out A` wrote, for the CLI tests:
//   png_probe P JSON A
// JSON is the command's stdout, whose "layout" says where each head's cells are. Every cell's centre pixel must be
// the background exactly where its probability is 0 (the causal mask: every cell above the diagonal, j > i, must
// be blank), and elsewhere a colour of the viridis map that decodes back to the probability within vmax / 510;
// each row of decoded probabilities must sum to one within its Lk · vmax / 510 of rounding. Exit 0 when all
// hold, 1 (naming the first bad cell) when not, 2 on unusable input.
#include <vkattn/attention_map.hpp>
#include <vkattn/npy.hpp>

#include <nlohmann/json.hpp>
#include <png.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

struct Png {
    int width = 0, height = 0;
    std::vector<uint8_t> rgb;
    std::array<uint8_t, 3> at(int x, int y) const {
        const size_t i = (size_t(y) * size_t(width) + size_t(x)) * 3;
        return {rgb[i], rgb[i + 1], rgb[i + 2]};
    }
};

bool read_png(const char* path, Png& out) {
    png_image png;
    std::memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (png_image_begin_read_from_file(&png, path) == 0) return false;
    png.format = PNG_FORMAT_RGB;
    out.width = int(png.width);
    out.height = int(png.height);
    out.rgb.resize(PNG_IMAGE_SIZE(png));
    return png_image_finish_read(&png, nullptr, out.rgb.data(), 0, nullptr) != 0;
}

int fail(const std::string& what) {
    std::fprintf(stderr, "png_probe: %s\n", what.c_str());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: png_probe PNG JSON NPY\n");
        return 2;
    }
    Png image;
    if (!read_png(argv[1], image)) {
        std::fprintf(stderr, "png_probe: cannot decode %s\n", argv[1]);
        return 2;
    }
    nlohmann::json j;
    try {
        std::ifstream(argv[2]) >> j;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "png_probe: %s: %s\n", argv[2], e.what());
        return 2;
    }
    const vkattn::NpyArray probs = vkattn::read_npy(argv[3]);
    const nlohmann::json& layout = j.at("layout");
    if (layout.at("width") != image.width || layout.at("height") != image.height) {
        return fail("the PNG is " + std::to_string(image.width) + " x " + std::to_string(image.height) +
                    ", the layout says " + layout.at("width").dump() + " x " + layout.at("height").dump());
    }
    if (layout.at("log_decades") != 0) return fail("only linear maps are probed");
    const float vmax = layout.at("vmax").get<float>();

    // The colour of every level of the map, and back.
    std::map<std::array<uint8_t, 3>, int> level_of;
    for (int k = 0; k < 256; ++k) level_of[vkattn::viz::colormap(float(k) / 255.0f)] = k;

    // The maps to probe: (top-left corner of its cells, offset of its [T, T] probabilities in the .npy).
    const int T = int(probs.shape.back());
    struct Panel {
        int x, y;
        size_t offset;
        std::string name;
    };
    std::vector<Panel> panels;
    int cell = layout.at("cell").get<int>();
    const size_t per_head = size_t(T) * size_t(T);
    if (layout.at("kind") == "map") {
        // [H, T, T]: a panel per head drawn (the head's index picks its probabilities).
        for (const auto& p : layout.at("panels")) {
            const int h = p.at("head").get<int>();
            panels.push_back({p.at("x").get<int>(), p.at("y").get<int>(), size_t(h) * per_head, "head " + std::to_string(h)});
        }
    } else {
        // [layers, H, T, T]: thumbnail (l, h) at (x0 + h · pitch_x, y0 + l · pitch_y).
        if (layout.at("pool").get<int>() != 1) return fail("max-pooled thumbnails are not probed");
        const int L = int(probs.shape.at(0)), H = int(probs.shape.at(1));
        for (int l = 0; l < L; ++l) {
            for (int h = 0; h < H; ++h) {
                panels.push_back({layout.at("x0").get<int>() + h * layout.at("pitch_x").get<int>(),
                                  layout.at("y0").get<int>() + l * layout.at("pitch_y").get<int>(),
                                  (size_t(l) * size_t(H) + size_t(h)) * per_head,
                                  "layer " + std::to_string(l) + " head " + std::to_string(h)});
            }
        }
    }
    if (panels.empty()) return fail("no panels in the layout");

    size_t blank = 0, coloured = 0;
    double worst_row = 0;
    for (const Panel& p : panels) {
        for (int i = 0; i < T; ++i) {
            double row_sum = 0;
            for (int j2 = 0; j2 < T; ++j2) {
                const float prob = probs.data.at(p.offset + size_t(i) * size_t(T) + size_t(j2));
                const auto rgb = image.at(p.x + j2 * cell + cell / 2, p.y + i * cell + cell / 2);
                const std::string where = p.name + ", query " + std::to_string(i) + ", key " + std::to_string(j2);
                if (j2 > i && prob != 0) return fail(where + " is above the diagonal but holds " + std::to_string(prob));
                if (prob == 0) {
                    if (rgb != vkattn::viz::kBackground) return fail(where + ": probability 0 but not drawn blank");
                    ++blank;
                    continue;
                }
                const auto found = level_of.find(rgb);
                if (found == level_of.end()) return fail(where + ": not a colour of the map");
                const double decoded = double(found->second) / 255.0 * vmax;
                if (std::abs(decoded - prob) > vmax / 510.0 + 1e-6) {
                    return fail(where + ": drawn as " + std::to_string(decoded) + ", the probability is " +
                                std::to_string(prob));
                }
                row_sum += decoded;
                ++coloured;
            }
            const double err = std::abs(row_sum - 1);
            if (err > T * vmax / 510.0 + 1e-6) {
                return fail(p.name + ", query " + std::to_string(i) + ": the drawn row sums to " + std::to_string(row_sum));
            }
            worst_row = std::max(worst_row, err);
        }
    }
    std::printf("png_probe: %zu panels of %d x %d cells: %zu blank (every one above the diagonal), %zu coloured and "
                "within vmax/510 of their probability; rows sum to 1 within %.3g\n",
                panels.size(), T, T, blank, coloured, worst_row);
    return 0;
}
