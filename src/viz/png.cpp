// PNG output through libpng's simplified API (png_image), which reports failures as a message instead of
// longjmp, so no C++ frame is ever jumped over.
#include <vkattn/attention_map.hpp>
#include <vkattn/error.hpp>

#include <png.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace vkattn::viz {

void write_png(const std::filesystem::path& path, const Image& image) {
    if (image.width < 1 || image.height < 1 || image.rgb.size() != size_t(image.width) * size_t(image.height) * 3) {
        throw Error("write_png: expected a non-empty image with width x height x 3 bytes, got " +
                    std::to_string(image.width) + " x " + std::to_string(image.height) + " and " +
                    std::to_string(image.rgb.size()) + " bytes");
    }
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw Error("cannot write " + path.string() + ": " + std::strerror(errno));
    png_image png;
    std::memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    png.width = png_uint_32(image.width);
    png.height = png_uint_32(image.height);
    png.format = PNG_FORMAT_RGB;
    const int ok = png_image_write_to_stdio(&png, f, 0, image.rgb.data(), 0, nullptr);
    const std::string message = ok ? "" : png.message;
    png_image_free(&png);
    const bool closed = std::fclose(f) == 0;
    if (!ok || !closed) {
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
        throw Error("cannot write " + path.string() + ": " + (ok ? std::string(std::strerror(errno)) : message));
    }
}

}  // namespace vkattn::viz
