; Inno Setup script: installs dist\mailbot for the current user (no administrator right needed)
; and adds the Start-menu shortcut "mailbot งานสารบรรณ", which runs mailbot.exe with no
; arguments (= mailbot start: the workspace in Documents\mailbot, the console in the browser).
#define AppName "mailbot งานสารบรรณ"
[Setup]
AppName={#AppName}
AppVersion=0.2.0
DefaultDirName={localappdata}\Programs\mailbot
DefaultGroupName={#AppName}
PrivilegesRequired=lowest
OutputBaseFilename=mailbot-setup
Compression=lzma2
SolidCompression=yes

[Languages]
; Inno Setup ships no official Thai translation of its own screens; the shortcut and tasks are in Thai
Name: "english"; MessagesFile: "compiler:Default.isl"

[Files]
Source: "..\dist\mailbot\*"; DestDir: "{app}"; Flags: recursesubdirs ignoreversion

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\mailbot.exe"; WorkingDir: "{userdocs}"
Name: "{userdesktop}\{#AppName}"; Filename: "{app}\mailbot.exe"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "สร้างไอคอนบนหน้าจอ / desktop icon"

[Run]
Filename: "{app}\mailbot.exe"; Description: "เปิด mailbot เดี๋ยวนี้ / start mailbot now"; Flags: postinstall nowait skipifsilent
