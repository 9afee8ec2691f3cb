# `vkattn generate` on the tiny checkpoint with greedy sampling must give the same token ids on the GPU and the
# CPU reference, and `vkattn forward --check` must pass. cmake -P with EXE and MODEL (tests/fixtures/tiny_gpt2),
# and optionally PROMPT and CHECK_TOKENS (comma-separated ids within the model's vocabulary) and DTYPES (the
# --dtype values to check, separated by ';').
if(NOT DEFINED PROMPT)
  set(PROMPT 43,34,66,15,35)
endif()
if(NOT DEFINED CHECK_TOKENS)
  set(CHECK_TOKENS 43,34,66,15,35,71,35,54)
endif()
if(NOT DEFINED DTYPES)
  set(DTYPES f32 f16)
endif()
foreach(attention naive fused)
  foreach(backend vulkan cpu)
    set(impl --impl ${attention})
    if(backend STREQUAL "cpu")
      set(impl "")  # the CPU reference has its own attention: --impl is refused with --backend cpu
    endif()
    execute_process(COMMAND "${EXE}" generate --model "${MODEL}" --tokens ${PROMPT} --temperature 0
                            --max-tokens 40 --backend ${backend} ${impl}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE ids_${backend} ERROR_VARIABLE err)
    message("${backend}, ${attention} attention: ${ids_${backend}}${err}")
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "generate --backend ${backend} --impl ${attention} failed with exit code ${rc}")
    endif()
  endforeach()
  if(NOT ids_vulkan STREQUAL ids_cpu OR NOT ids_cpu MATCHES "^[0-9]+(,[0-9]+)*\n$")
    message(FATAL_ERROR "--impl ${attention}: the GPU generated '${ids_vulkan}', the CPU '${ids_cpu}'")
  endif()
  foreach(dtype IN LISTS DTYPES)
    execute_process(COMMAND "${EXE}" forward --model "${MODEL}" --tokens ${CHECK_TOKENS} --check
                            --dtype ${dtype} --impl ${attention}
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    message("${out}${err}")
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "forward --check --dtype ${dtype} --impl ${attention} exited with ${rc}")
    endif()
  endforeach()
endforeach()
