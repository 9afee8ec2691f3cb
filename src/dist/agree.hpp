// The one rule that keeps MPI ranks from hanging on an error: every collective step starts with agree(), in
// which each rank says whether it failed; if any did, all throw the first failing rank's message.
#pragma once

#include <vkattn/error.hpp>

#include <mpi.h>

#include <string>

namespace vkattn::ring {

// Thrown on every rank by agree(): the ranks have already agreed on it, so no rank may agree on it again.
struct AgreedError : Error {
    using Error::Error;
};

// Every rank learns whether any rank failed (error non-empty); all throw AgreedError with the first failing
// rank's message, prefixed "ring attention: rank R: ", so none hangs in a collective the failing one never
// reaches.
void agree(MPI_Comm comm, const std::string& error);

}  // namespace vkattn::ring
