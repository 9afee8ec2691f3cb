# Runs the vkattn CLI once and checks its exit code; for exit code 2 also that stderr is exactly one line
# (the CLI's promise for bad input). cmake -P, with:
#   EXE      the vkattn executable
#   ARGS     its arguments, separated by '|'; <TMP> becomes a scratch directory and <LONG_TOKENS> a list of
#            1025 token ids (one more than GPT-2's n_positions)
#   RC       the expected exit code
#   MATCH    (optional) a regular expression stderr must match
#   MATCH_OUT (optional) a regular expression stdout must match
#   NO_MATCH (optional) a regular expression neither stdout nor stderr may match
#   SETUP    (optional) bad_npy: writes <TMP>/bad.npy, a file that is not .npy; config_only: writes a GPT-2
#            config.json into <TMP>/model and no weights; deep_config: a config.json whose n_embd is an array
#            nested 100,000 deep; deep_index: a good config.json and a model.safetensors.index.json with such
#            an array in its weight_map; fifo_config: config.json as a named pipe (mkfifo); mismatched_npy:
#            q.npy [1, 2, 4, 64] and k.npy [2, 2, 4, 32] (written by the CLI itself); fifo: <TMP>/fifo.npy, a
#            named pipe; fifo_weights and fifo_index: config_only plus model.safetensors or
#            model.safetensors.index.json as a named pipe
#            llama_tokenizer: <TMP>/model holds FIXTURES/tiny_llama3_gqa with FIXTURES/tokenizer_bytelevel's
#            tokenizer.json and tokenizer_config.json, and <TMP>/text.txt a text of its vocabulary
#   TMP      the scratch directory
#   FIXTURES tests/fixtures
file(REMOVE_RECURSE "${TMP}")
file(MAKE_DIRECTORY "${TMP}")
if(SETUP STREQUAL "bad_npy")
  file(WRITE "${TMP}/bad.npy" "NUMPY but not really a .npy file")
elseif(SETUP STREQUAL "mismatched_npy")
  execute_process(COMMAND "${EXE}" attention --backend cpu --batch 1 --heads 2 --lq 4 --dim 64 --out "${TMP}/q.npy"
                  OUTPUT_QUIET RESULT_VARIABLE setup_rc)
  execute_process(COMMAND "${EXE}" attention --backend cpu --batch 2 --heads 2 --lq 4 --dim 32 --out "${TMP}/k.npy"
                  OUTPUT_QUIET RESULT_VARIABLE setup_rc2)
  if(NOT setup_rc EQUAL 0 OR NOT setup_rc2 EQUAL 0)
    message(FATAL_ERROR "setup: writing q.npy and k.npy failed")
  endif()
elseif(SETUP STREQUAL "llama_tokenizer")
  file(MAKE_DIRECTORY "${TMP}/model")
  file(COPY "${FIXTURES}/tiny_llama3_gqa/config.json" "${FIXTURES}/tiny_llama3_gqa/model.safetensors"
            "${FIXTURES}/tokenizer_bytelevel/tokenizer.json" "${FIXTURES}/tokenizer_bytelevel/tokenizer_config.json"
       DESTINATION "${TMP}/model")
  file(WRITE "${TMP}/text.txt" "abc ab cab bc abc ab ab abc cab\nabc ab bc cab ab abc ab cab bc ab\n")
elseif(SETUP STREQUAL "fifo")
  execute_process(COMMAND mkfifo "${TMP}/fifo.npy" RESULT_VARIABLE setup_rc)
elseif(SETUP MATCHES "^fifo_(weights|index)$" OR SETUP STREQUAL "config_only")
  file(MAKE_DIRECTORY "${TMP}/model")
  if(SETUP STREQUAL "fifo_weights")
    execute_process(COMMAND mkfifo "${TMP}/model/model.safetensors")
  elseif(SETUP STREQUAL "fifo_index")
    execute_process(COMMAND mkfifo "${TMP}/model/model.safetensors.index.json")
  endif()
  file(WRITE "${TMP}/model/config.json" [[{"model_type": "gpt2", "n_embd": 64, "n_head": 2, "n_layer": 1,
    "n_positions": 64, "vocab_size": 96, "layer_norm_epsilon": 1e-05, "activation_function": "gelu_new"}]])
elseif(SETUP MATCHES "^deep_")
  string(REPEAT "[" 100000 open)
  string(REPEAT "]" 100000 close)
  set(config [[{"model_type": "gpt2", "n_embd": 64, "n_head": 2, "n_layer": 1, "n_positions": 64, "vocab_size": 96}]])
  if(SETUP STREQUAL "deep_config")
    string(REPLACE "\"n_embd\": 64" "\"n_embd\": ${open}${close}" config "${config}")
  else()
    file(WRITE "${TMP}/model/model.safetensors.index.json" "{\"weight_map\": {\"wte.weight\": ${open}${close}}}")
  endif()
  file(WRITE "${TMP}/model/config.json" "${config}")
elseif(SETUP MATCHES "^fifo_")
  file(MAKE_DIRECTORY "${TMP}/model")
  if(SETUP STREQUAL "fifo_index")
    file(WRITE "${TMP}/model/config.json" [[{"model_type": "gpt2", "n_embd": 64, "n_head": 2, "n_layer": 1,
      "n_positions": 64, "vocab_size": 96}]])
    set(fifo "${TMP}/model/model.safetensors.index.json")
  else()
    set(fifo "${TMP}/model/config.json")
  endif()
  execute_process(COMMAND mkfifo "${fifo}" RESULT_VARIABLE made)
  if(NOT made EQUAL 0)
    message(FATAL_ERROR "mkfifo ${fifo} failed")
  endif()
endif()

set(long_tokens "464")
foreach(i RANGE 1 1024)
  string(APPEND long_tokens ",464")
endforeach()
string(REPLACE "<TMP>" "${TMP}" args "${ARGS}")
string(REPLACE "<LONG_TOKENS>" "${long_tokens}" args "${args}")
string(REPLACE "|" ";" args "${args}")

# A reader blocked on a FIFO would hang the test, so every run has a time limit. stdin is empty (not a terminal).
file(WRITE "${TMP}/stdin.txt" "")
execute_process(COMMAND "${EXE}" ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120
                INPUT_FILE "${TMP}/stdin.txt")
message("stdout:\n${out}\nstderr:\n${err}")
if(NOT rc STREQUAL "${RC}")
  message(FATAL_ERROR "expected exit code ${RC}, got ${rc}")
endif()
if(RC EQUAL 2)
  string(REGEX MATCHALL "\n" newlines "${err}")
  list(LENGTH newlines lines)
  if(NOT lines EQUAL 1 OR NOT err MATCHES "^vkattn: ")
    message(FATAL_ERROR "expected one line on stderr starting 'vkattn: ', got ${lines} lines")
  endif()
endif()
if(DEFINED MATCH AND NOT err MATCHES "${MATCH}")
  message(FATAL_ERROR "stderr does not match '${MATCH}'")
endif()
if(DEFINED MATCH_OUT AND NOT out MATCHES "${MATCH_OUT}")
  message(FATAL_ERROR "stdout does not match '${MATCH_OUT}'")
endif()
if(DEFINED NO_MATCH AND ("${out}${err}" MATCHES "${NO_MATCH}"))
  message(FATAL_ERROR "the output matches '${NO_MATCH}', which it must not")
endif()
