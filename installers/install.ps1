<#
.SYNOPSIS
  Install Sitelabel on Windows from this bundle folder alone: no network, no package index.

.DESCRIPTION
  Written for the win_amd64 bundle (build_bundle.py --target win_amd64). It is not tested on the
  Linux build machine; test it on a Windows workstation before a roll-out.

  As Administrator: C:\Program Files\Sitelabel, the command for every user, a Start menu entry for
  all users. Otherwise: %LOCALAPPDATA%\Programs\Sitelabel, the user's PATH and Start menu.
  Running it again with a newer bundle upgrades in place (the previous version is kept for a
  rollback); the site config (C:\ProgramData\sitelabel\config.toml) is never touched unless
  -SiteConfig is given.

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File install.ps1
  powershell -ExecutionPolicy Bypass -File install.ps1 -SiteConfig \\server\it\sitelabel.toml
  powershell -ExecutionPolicy Bypass -File install.ps1 -Uninstall
#>
[CmdletBinding()]
param(
    [string]$Prefix = "",
    [string]$Python = "",
    [string]$SiteConfig = "",
    [switch]$NoDemoData,
    [switch]$NoShortcut,
    [switch]$Uninstall
)
$ErrorActionPreference = "Stop"
$Bundle = $PSScriptRoot

function Say([string]$Message) { Write-Host "sitelabel-install: $Message" }
function Fail([string]$Message) { Write-Error "sitelabel-install: ERROR: $Message"; exit 1 }

$IsAdmin = ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole(
    [Security.Principal.WindowsBuiltInRole]::Administrator)
if (-not $Prefix) {
    $Prefix = if ($IsAdmin) { Join-Path $env:ProgramFiles "Sitelabel" } else { Join-Path $env:LOCALAPPDATA "Programs\Sitelabel" }
}
$ConfigDir = if ($IsAdmin) { Join-Path $env:ProgramData "sitelabel" } else { Join-Path $env:LOCALAPPDATA "sitelabel" }
$StartMenu = if ($IsAdmin) { [Environment]::GetFolderPath("CommonPrograms") } else { [Environment]::GetFolderPath("Programs") }
$Shortcut = Join-Path $StartMenu "Sitelabel.lnk"
$BinDir = Join-Path $Prefix "bin"
$PathScope = if ($IsAdmin) { "Machine" } else { "User" }

function Remove-FromPath {
    $path = [Environment]::GetEnvironmentVariable("Path", $PathScope)
    if ($path) {
        $kept = ($path -split ";") | Where-Object { $_ -and ($_ -ne $BinDir) }
        [Environment]::SetEnvironmentVariable("Path", ($kept -join ";"), $PathScope)
    }
}

if ($Uninstall) {
    if (-not (Test-Path (Join-Path $Prefix "versions"))) { Fail "no Sitelabel installation in $Prefix" }
    Remove-Item -Force -ErrorAction SilentlyContinue $Shortcut
    Remove-FromPath
    Remove-Item -Recurse -Force $Prefix
    Say "removed $Prefix, the command and the Start menu entry"
    Say "kept: the site config ($ConfigDir\config.toml) and each user's settings"
    exit 0
}

# --- 1. the bundle is complete and unchanged ---------------------------------------------------
Say "checking the bundle's checksums"
$Sums = Join-Path $Bundle "SHA256SUMS"
if (-not (Test-Path $Sums) -or -not (Test-Path (Join-Path $Bundle "bundle.json"))) { Fail "$Bundle is not a Sitelabel bundle" }
foreach ($line in Get-Content $Sums) {
    if (-not $line.Trim()) { continue }
    $expected, $relative = $line -split "  ", 2
    $file = Join-Path $Bundle ($relative -replace "/", "\")
    if (-not (Test-Path $file)) { Fail "missing ${relative}: the bundle is incomplete; copy it again" }
    $actual = (Get-FileHash -Algorithm SHA256 $file).Hash.ToLower()
    if ($actual -ne $expected) { Fail "checksum mismatch for ${relative}: the bundle is damaged; copy it again" }
}
$Info = Get-Content (Join-Path $Bundle "bundle.json") -Raw | ConvertFrom-Json
if ($Info.target -ne "win_amd64") { Fail "this bundle is for $($Info.target), not Windows (win_amd64)" }

# --- 2. a Python of the version the wheels were built for ----------------------------------------
if (-not $Python) {
    $launcher = Get-Command py -ErrorAction SilentlyContinue
    if ($launcher) { $Python = (& py "-$($Info.python)" -c "import sys; print(sys.executable)" 2>$null) }
}
if (-not $Python) { Fail "no Python $($Info.python) found; install it from python.org (offline installer) or pass -Python" }
$have = (& $Python -c "import sys; print('%d.%d' % sys.version_info[:2])")
if ($have -ne $Info.python) { Fail "this bundle is for Python $($Info.python) but $Python is $have" }

# --- 3. a fresh environment beside any previous version ---------------------------------------------
$Stamp = Get-Date -Format "yyyyMMddHHmmss"
$EnvDir = Join-Path $Prefix "versions\$($Info.version)-$Stamp"
New-Item -ItemType Directory -Force (Join-Path $Prefix "versions") | Out-Null
Say "creating $EnvDir"
& $Python -m venv $EnvDir
if ($LASTEXITCODE -ne 0) { Fail "could not create the environment" }
$EnvPython = Join-Path $EnvDir "Scripts\python.exe"
$env:PIP_NO_INDEX = "1"
$env:PIP_CONFIG_FILE = "NUL"
function Pip-Offline([string[]]$PipArgs) {
    & $EnvPython -m pip --isolated --disable-pip-version-check --no-input install --quiet --no-index --no-cache-dir @PipArgs
    if ($LASTEXITCODE -ne 0) { Remove-Item -Recurse -Force $EnvDir; Fail "installing from the bundle failed; nothing was changed" }
}
Pip-Offline @("--find-links", (Join-Path $Bundle "wheels"), "--require-hashes", "-r", (Join-Path $Bundle "bootstrap.lock"))
Say "installing Sitelabel $($Info.version) and its dependencies from the bundle (no network)"
Pip-Offline @("--find-links", (Join-Path $Bundle "wheels"), "--require-hashes", "-r", (Join-Path $Bundle "requirements.lock"))
if (-not $NoDemoData -and (Test-Path (Join-Path $Bundle "demo-data.lock"))) {
    Pip-Offline @("--no-deps", "--find-links", (Join-Path $Bundle "demo-wheels"), "--require-hashes", "-r", (Join-Path $Bundle "demo-data.lock"))
}
$Exe = Join-Path $EnvDir "Scripts\sitelabel.exe"
$Installed = & $Exe --version
if ($LASTEXITCODE -ne 0) { Remove-Item -Recurse -Force $EnvDir; Fail "the installed sitelabel does not start; nothing was changed" }

# --- 4. switch: the command shim and the shortcut point at the new version ------------------------
$CurrentFile = Join-Path $Prefix "current.txt"
$Previous = if (Test-Path $CurrentFile) { (Get-Content $CurrentFile -Raw).Trim() } else { "" }
New-Item -ItemType Directory -Force $BinDir, (Join-Path $Prefix "share") | Out-Null
Set-Content -Encoding ASCII (Join-Path $BinDir "sitelabel.cmd") "@`"$Exe`" %*"
Set-Content -Encoding ASCII $CurrentFile $EnvDir
if ($Previous) {
    Set-Content -Encoding ASCII (Join-Path $Prefix "previous.txt") $Previous
    Get-ChildItem (Join-Path $Prefix "versions") -Directory |
        Where-Object { $_.FullName -ne $EnvDir -and $_.FullName -ne $Previous } |
        ForEach-Object { Remove-Item -Recurse -Force $_.FullName }
}
Copy-Item -Force (Join-Path $Bundle "share\sitelabel.ico"), (Join-Path $Bundle "site-config.example.toml"), (Join-Path $Bundle "README.md") (Join-Path $Prefix "share")
$path = [Environment]::GetEnvironmentVariable("Path", $PathScope)
if (-not (($path -split ";") -contains $BinDir)) {
    [Environment]::SetEnvironmentVariable("Path", (($path.TrimEnd(";"), $BinDir) -join ";"), $PathScope)
    Say "added $BinDir to the $PathScope PATH (new terminals see it)"
}

if (-not $NoShortcut) {
    $Gui = Join-Path $EnvDir "Scripts\sitelabel.exe"
    $shell = New-Object -ComObject WScript.Shell
    $link = $shell.CreateShortcut($Shortcut)
    $link.TargetPath = $Gui
    $link.Arguments = "run"
    $link.IconLocation = (Join-Path $Prefix "share\sitelabel.ico")
    $link.Description = "Sitelabel: medical image annotation"
    $link.WindowStyle = 7  # minimised console; the frozen app (sitelabel-gui.exe) has none at all
    $link.Save()
}

if ($SiteConfig) {
    if (-not (Test-Path $SiteConfig)) { Fail "no site config at $SiteConfig" }
    New-Item -ItemType Directory -Force $ConfigDir | Out-Null
    $Target = Join-Path $ConfigDir "config.toml"
    if (Test-Path $Target) { Copy-Item $Target "$Target.before-$Stamp"; Say "previous site config kept as $Target.before-$Stamp" }
    Copy-Item -Force $SiteConfig $Target
    Say "site config installed: $Target"
} elseif (Test-Path (Join-Path $ConfigDir "config.toml")) {
    Say "site config kept: $(Join-Path $ConfigDir 'config.toml')"
} else {
    Say "no site config yet: copy $Prefix\share\site-config.example.toml to $ConfigDir\config.toml and edit it"
}
Say "installed $Installed in $Prefix"
if ($Previous) { Say "previous version kept for a rollback: $Previous" }
Say "next: sitelabel config check"
