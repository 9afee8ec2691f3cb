# vkattn tokenize with a directory that holds only tokenizer.json + tokenizer_config.json (the hand-written
# SentencePiece fixture): "hi hi" is <s> ▁hi ▁hi = 1,10,10, and the ids decode back. cmake -P with EXE and DIR.
execute_process(COMMAND "${EXE}" tokenize --model "${DIR}" --text "hi hi" RESULT_VARIABLE rc OUTPUT_VARIABLE ids
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT ids STREQUAL "1,10,10\n")
  message(FATAL_ERROR "tokenize --text 'hi hi': exit code ${rc}, output '${ids}' ${err}, expected 1,10,10")
endif()
execute_process(COMMAND "${EXE}" tokenize --model "${DIR}" --decode 10,10,3 RESULT_VARIABLE rc OUTPUT_VARIABLE text
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT text STREQUAL "hi hi\n\n")
  message(FATAL_ERROR "tokenize --decode 10,10,3: exit code ${rc}, output '${text}' ${err}, expected 'hi hi\\n'")
endif()
