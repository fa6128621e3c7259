@echo off
rem Runs the assistant from source on Windows: builds it for win-x64 (Release, DirectML flavor of ONNX Runtime,
rem into .build\assistant-win) when a source is newer than the binary, fetches the OCR and VAD models once,
rem then runs it with your arguments. Uses models\default unless --models is given. The Windows counterpart
rem of ./assistant; set ASSISTANT_FLAVOR=cpu to build the CPU flavor instead.
setlocal
set "root=%~dp0"
set "bin=%root%.build\assistant-win\assistant.exe"
dotnet --version >nul 2>nul
if errorlevel 1 (
  echo error: the .NET 10 SDK is needed ^(dotnet not on PATH^): see https://learn.microsoft.com/dotnet/core/install/windows 1>&2
  exit /b 2
)
if "%ASSISTANT_FLAVOR%"=="" set "ASSISTANT_FLAVOR=dml"
rem Rebuild when the binary is missing or any source is newer (PowerShell ships with Windows 10 and later).
set "stale=1"
if exist "%bin%" (
  for /f %%s in ('powershell -NoProfile -Command "$b=(Get-Item '%bin%').LastWriteTimeUtc; @(Get-ChildItem -Recurse -Include *.cs,*.csproj,*.props '%root%Capture','%root%Inference','%root%Shaders','%root%Engine','%root%Ui' | Where-Object { $_.FullName -notmatch '\\(obj|bin)\\' -and $_.LastWriteTimeUtc -gt $b }).Count"') do set "stale=%%s"
)
if not "%stale%"=="0" (
  echo building assistant ^(Release, win-x64, %ASSISTANT_FLAVOR%^)... 1>&2
  dotnet build "%root%Ui\Ui.csproj" -c Release -r win-x64 --no-self-contained -p:OnnxRuntimeFlavor=%ASSISTANT_FLAVOR% -o "%root%.build\assistant-win" --nologo -v quiet
  if errorlevel 1 (
    echo error: the build failed ^(above^) 1>&2
    exit /b 1
  )
)
call "%root%tools\fetch_models.cmd"
if errorlevel 1 echo warning: OCR/VAD models not fetched; reading text and listening will not work 1>&2
"%bin%" %*
exit /b %errorlevel%
