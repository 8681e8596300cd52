# Warnings, visibility and sanitizers shared by every target of the project.
# No -march flag anywhere: the ISA is chosen at run time by Highway.
function(sdpa_set_compile_options target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANG_AND_ID:CXX,GNU,Clang>:-Wall -Wextra -Wno-psabi>
    $<$<COMPILE_LANG_AND_ID:C,GNU,Clang>:-Wall -Wextra>)
  if(SDPA_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(SDPA_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${SDPA_SANITIZE}
                           -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${SDPA_SANITIZE})
  endif()
endfunction()
