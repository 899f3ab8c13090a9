# Cortex-M with arm-none-eabi-gcc. The core defaults to the Cortex-M7 of an STM32F746
# (single-precision FPU); choose another with -DMCUGEN_CPU_FLAGS="-mcpu=cortex-m4 -mthumb ...".
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_AR arm-none-eabi-ar)
set(CMAKE_RANLIB arm-none-eabi-ranlib)
# No startup code or linker script here: test the compiler on a library, not a program.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
if(NOT MCUGEN_CPU_FLAGS)
  set(MCUGEN_CPU_FLAGS "-mcpu=cortex-m7 -mthumb -mfpu=fpv5-sp-d16 -mfloat-abi=hard")
endif()
set(CMAKE_C_FLAGS_INIT "${MCUGEN_CPU_FLAGS}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
