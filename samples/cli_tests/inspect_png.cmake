# `vkattn inspect` end to end: runs it with --json --png <TMP>/map.png --probs-out <TMP>/p.npy, checks exit code
# 0, then decodes the PNG with png_probe (png_probe.cpp): blank exactly where a probability is 0 (every cell above
# the diagonal), each other cell its probability's colour, rows summing to one. cmake -P, with:
#   EXE       the vkattn executable;  PROBE  png_probe
#   ARGS      the arguments after `inspect`, separated by '|'; <TMP> becomes the scratch directory,
#             <TOKENS_1024> 1,024 GPT-2 token ids, and <GPT2_VOCAB> $VKATTN_GPT2_VOCAB_DIR (the test is skipped
#             without it, as cli_tokenize_gpt2 is)
#   MATCH     (optional) a regular expression stdout (the JSON object) must match
#   SETUP     (optional) llama_tokenizer: <TMP>/model holds FIXTURES/tiny_llama3_gqa with the tokenizer of
#             FIXTURES/tokenizer_bytelevel
#   TMP, FIXTURES
file(REMOVE_RECURSE "${TMP}")
file(MAKE_DIRECTORY "${TMP}")
string(REPLACE "|" ";" args "${ARGS}")
string(REPLACE "<TMP>" "${TMP}" args "${args}")
if(args MATCHES "<TOKENS_1024>")
  set(ids "0")
  foreach(i RANGE 1 1023)
    math(EXPR id "(${i} * 7919) % 50257")
    string(APPEND ids ",${id}")
  endforeach()
  string(REPLACE "<TOKENS_1024>" "${ids}" args "${args}")
endif()
if(args MATCHES "<GPT2_VOCAB>")
  if(NOT DEFINED ENV{VKATTN_GPT2_VOCAB_DIR})
    message("SKIPPED: VKATTN_GPT2_VOCAB_DIR is not set (scripts/fetch-gpt2-vocab.sh fetches the vocabulary)")
    return()
  endif()
  string(REPLACE "<GPT2_VOCAB>" "$ENV{VKATTN_GPT2_VOCAB_DIR}" args "${args}")
endif()
if(SETUP STREQUAL "llama_tokenizer")
  file(MAKE_DIRECTORY "${TMP}/model")
  file(COPY "${FIXTURES}/tiny_llama3_gqa/config.json" "${FIXTURES}/tiny_llama3_gqa/model.safetensors"
            "${FIXTURES}/tokenizer_bytelevel/tokenizer.json" "${FIXTURES}/tokenizer_bytelevel/tokenizer_config.json"
       DESTINATION "${TMP}/model")
endif()
execute_process(COMMAND "${EXE}" inspect ${args} --json --png "${TMP}/map.png" --probs-out "${TMP}/p.npy"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "vkattn inspect ${args}: exit code ${rc}, expected 0\nstderr:\n${err}")
endif()
if(DEFINED MATCH AND NOT out MATCHES "${MATCH}")
  message(FATAL_ERROR "stdout does not match '${MATCH}':\n${out}")
endif()
if(err MATCHES "Vulkan validation")
  message(FATAL_ERROR "a validation message:\n${err}")
endif()
file(WRITE "${TMP}/out.json" "${out}")
execute_process(COMMAND "${PROBE}" "${TMP}/map.png" "${TMP}/out.json" "${TMP}/p.npy"
                RESULT_VARIABLE rc OUTPUT_VARIABLE probe ERROR_VARIABLE probe_err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the PNG of vkattn inspect ${args}:\n${probe}${probe_err}")
endif()
message("${err}${probe}")
