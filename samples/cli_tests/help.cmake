# Every enumerated option shows its {choices} in --help, the kernel choice is spelled --impl everywhere, and the
# old --attention is hidden. cmake -P with EXE.
function(help_of out_var)
  execute_process(COMMAND "${EXE}" ${ARGN} --help RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "vkattn ${ARGN} --help: exit code ${rc}\n${err}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

# command (words joined by '/') | option | its choices as --help must show them
set(expected
  "attention|--dtype|{f32,f16}" "attention|--backend|{vulkan,cpu}" "attention|--impl|{fused,naive}"
  "bench/attention|--dtype|{f32,f16}" "bench/attention|--backend|{vulkan,cpu}" "bench/attention|--impl|{naive,fused}"
  "bench/matmul|--dtype|{f32,f16,bf16}"
  "bench/gpt|--dtype|{f32,f16,bf16}" "bench/gpt|--impl|{fused,naive}"
  "forward|--backend|{vulkan,cpu}" "forward|--dtype|{f32,f16,bf16}" "forward|--impl|{fused,naive}"
  "generate|--backend|{vulkan,cpu}" "generate|--dtype|{f32,f16,bf16}" "generate|--impl|{fused,naive}"
  "perplexity|--backend|{vulkan,cpu}" "perplexity|--dtype|{f32,f16,bf16}" "perplexity|--impl|{fused,naive}"
  "inspect|--backend|{vulkan,cpu}" "inspect|--dtype|{f32,f16,bf16}" "inspect|--impl|{fused,naive}")
foreach(entry IN LISTS expected)
  string(REPLACE "|" ";" fields "${entry}")
  list(GET fields 0 command)
  list(GET fields 1 option)
  list(GET fields 2 choices)
  string(REPLACE "/" ";" words "${command}")
  help_of(help ${words})
  string(FIND "${help}" "${option} TEXT:${choices}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "vkattn ${command} --help does not show '${option} TEXT:${choices}':\n${help}")
  endif()
  if(help MATCHES "--attention ")
    message(FATAL_ERROR "vkattn ${command} --help shows the deprecated --attention:\n${help}")
  endif()
endforeach()
message("every enumerated option shows its choices; --attention is hidden")
