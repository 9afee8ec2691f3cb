// A model file reaching into the public API's internals: CheckLayers.cmake must refuse it.
#include "api/format.hpp"
