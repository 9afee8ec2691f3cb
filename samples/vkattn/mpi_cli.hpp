// What the subcommands that run over MPI ranks share (ring-attention, perplexity --ring): MPI for the length of
// the command, errors agreed by every rank, peak host memory. Built only with VKATTN_WITH_MPI.
#pragma once
#ifdef VKATTN_HAS_MPI

#include <vkattn/error.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <string>
#if __has_include(<sys/resource.h>)
#include <sys/resource.h>
#define VKATTN_HAVE_RUSAGE 1
#endif

namespace vkattn::cli {

// Peak resident host memory of this process in MiB (on CPU devices such as lavapipe it holds device memory too).
inline double peak_rss_mib() {
#ifdef VKATTN_HAVE_RUSAGE
    rusage u{};
    if (getrusage(RUSAGE_SELF, &u) == 0) return double(u.ru_maxrss) / 1024.0;  // Linux: KiB
#endif
    return 0;
}

// MPI for the length of the command (other subcommands never start it).
struct MpiSession {
    MpiSession() {
        int started = 0;
        MPI_Initialized(&started);
        if (!started) MPI_Init(nullptr, nullptr);
    }
    ~MpiSession() {
        int finished = 0;
        MPI_Finalized(&finished);
        if (!finished) MPI_Finalize();
    }
    MpiSession(const MpiSession&) = delete;
    MpiSession& operator=(const MpiSession&) = delete;
};

// Every rank throws the first failing rank's message, so a failure on one rank never leaves the others waiting.
inline void agree(const std::string& error) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int mine = error.empty() ? INT32_MAX : rank, first = INT32_MAX;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == INT32_MAX) return;
    int len = rank == first ? int(std::min<size_t>(error.size(), 4096)) : 0;
    MPI_Bcast(&len, 1, MPI_INT, first, MPI_COMM_WORLD);
    std::string message = rank == first ? error.substr(0, size_t(len)) : std::string(size_t(len), ' ');
    MPI_Bcast(message.data(), len, MPI_CHAR, first, MPI_COMM_WORLD);
    throw Error(first == 0 ? message : "rank " + std::to_string(first) + ": " + message);
}

template <class F>
void on_every_rank(F&& f) {
    std::string error;
    try {
        f();
    } catch (const std::exception& e) {
        error = e.what();
    }
    agree(error);
}

}  // namespace vkattn::cli

#endif  // VKATTN_HAS_MPI
