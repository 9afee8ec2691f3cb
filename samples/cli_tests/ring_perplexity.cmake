# `perplexity --ring` over MPI ranks gives the single-device perplexity: a Llama-format fixture with a
# tokenizer.json, the same text and windows on one device and on RANKS ranks (mpiexec). cmake -P, with:
#   EXE, MPIEXEC, RANKS, FIXTURES (tests/fixtures), TMP (a scratch directory)
file(REMOVE_RECURSE "${TMP}")
file(MAKE_DIRECTORY "${TMP}/model")
file(COPY "${FIXTURES}/tiny_llama3_gqa/config.json" "${FIXTURES}/tiny_llama3_gqa/model.safetensors"
          "${FIXTURES}/tokenizer_bytelevel/tokenizer.json" "${FIXTURES}/tokenizer_bytelevel/tokenizer_config.json"
     DESTINATION "${TMP}/model")
string(REPEAT "abc ab cab bc abc ab ab abc cab\nabc ab bc cab ab abc ab cab bc ab\n" 3 text)
file(WRITE "${TMP}/text.txt" "${text}")
set(args perplexity --model "${TMP}/model" --file "${TMP}/text.txt" --context 48 --stride 20 --json)

function(perplexity_of out_var err_var)
  execute_process(COMMAND ${ARGN} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN}\nexited ${rc}\nstdout: ${out}\nstderr: ${err}")
  endif()
  string(JSON ppl GET "${out}" perplexity)
  set(${out_var} "${ppl}" PARENT_SCOPE)
  set(${err_var} "${err}" PARENT_SCOPE)
endfunction()

perplexity_of(single single_err "${EXE}" ${args})
perplexity_of(ring ring_err "${MPIEXEC}" -n ${RANKS} --oversubscribe "${EXE}" ${args} --ring)
message(STATUS "one device: PPL ${single}; ${RANKS} ranks: PPL ${ring}")
math(EXPR last "${RANKS} - 1")
if(NOT ring_err MATCHES "sequence-parallel over ${RANKS} ranks" OR
   NOT ring_err MATCHES "rank ${last}: [0-9.]+ s, in ring attention [0-9.]+ s, waiting on communication")
  message(FATAL_ERROR "the ring run's report lacks the ranks or their timings:\n${ring_err}")
endif()
# The same numbers up to float rounding of the merged attention (the MPI tests bound logits to 1e-4).
execute_process(COMMAND python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(a - b) <= 1e-5 * a else 1)"
                "${single}" "${ring}" RESULT_VARIABLE differ)
if(NOT differ EQUAL 0)
  message(FATAL_ERROR "perplexity on ${RANKS} ranks ${ring} differs from one device's ${single}")
endif()
